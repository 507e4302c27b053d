// Benchmark (issue 17): what SBOM and provenance attestations, and signing, add to a rebuild.
//   TRIALS=5 node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/attestations.ts
// A rebuild = a new version of the wine model (build-timing.ts's newModelVersion: a model layer
// new to BuildKit and the registry) built into the kserve image on the warm BuildKit builder (the
// rig's buildkitd through a buildx `remote` builder), timed from model URI to pushed digest
// through the action's plan and build. Five settings, each trial building one new version with
// each, in turn: provenance false (no attestations), mode=min (buildx's default), mode=max, sbom
// (the rig's syft generator, parts/sbom_scanner.sh) + mode=max where the SBOM of the layers is
// remembered (src/image/sbom.ts), and the same in a new repository each trial (BuildKit scans).
// After the fourth, the action's `cosign sign` with a key, and `cosign attest` of the SBOM (its
// SPDX document as the predicate).
// Needs the rig's docker, registry, buildkit, sbom_scanner, cosign, kserve_base, mlflow and
// fixtures parts.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { actionsExec } from '../src/image/exec.js'
import type { Attestations } from '../src/image/index.js'
import { Cosign } from '../src/image/signing.js'
import { MemoryLogger } from '../test/support/memory-logger.js'
import { rigEnv } from '../test/integration/rig-env.js'
import { registryBlobJson, registryManifest } from '../test/integration/image/buildkit-builder.js'
import { BENCH_MODEL, build, newModelVersion, pct, stepSeconds } from './build-timing.js'

const TRIALS = Number(process.env.TRIALS ?? 3)
const RUN = Date.now().toString(36)
const dir = mkdtempSync(join(tmpdir(), 'bench-attestations-'))
const docker = (args: string[]) =>
  execFileSync(rigEnv('DOCKER_CLI'), args, {
    env: { ...process.env, DOCKER_HOST: rigEnv('DOCKER_HOST'), DOCKER_CONFIG: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString()
docker(['buildx', 'create', '--name', rigEnv('BUILDKIT_BUILDER'), '--driver', 'remote', rigEnv('BUILDKIT_ADDR')])
const builder = { name: rigEnv('BUILDKIT_BUILDER'), dockerConfig: dir }

const cosignEnv = { COSIGN_PASSWORD: '' }
execFileSync(rigEnv('COSIGN_BIN'), ['generate-key-pair', '--output-key-prefix', join(dir, 'bench')], {
  env: { ...process.env, ...cosignEnv },
  stdio: 'ignore',
})
const cosign = new Cosign({ exec: actionsExec, log: new MemoryLogger(), cosign: rigEnv('COSIGN_BIN') })
const signer = { kind: 'key', key: { path: join(dir, 'bench.key') }, password: '' } as const

const SBOM: Attestations = { sbom: rigEnv('SBOM_GENERATOR_IMAGE'), provenance: 'mode=max' }
// `fresh`: each trial in a new repository, where no SBOM of these layers is remembered yet.
const SETTINGS: readonly [string, Attestations, { fresh?: boolean }?][] = [
  ['none (provenance: false)', { provenance: 'false' }],
  ["provenance: mode=min (buildx's default)", { provenance: 'mode=min' }],
  ['provenance: mode=max', { provenance: 'mode=max' }],
  ['sbom + provenance: mode=max (SBOM of these layers remembered)', SBOM],
  ['sbom + provenance: mode=max, first build on these layers in the repository (scanned)', SBOM, { fresh: true }],
]
const repo = (i: number, t?: number) =>
  `${rigEnv('REGISTRY')}/bench-attest-${i}${t === undefined ? '' : `-t${t}`}-${RUN}`

const times: Record<string, number[]> = {}
const record = (what: string, s: number) => {
  ;(times[what] ??= []).push(s)
  console.log(`${what}: ${s.toFixed(2)} s`)
}
const elapsed = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now()
  await fn()
  return (performance.now() - t0) / 1000
}

/** The SPDX document of an index's SBOM attestation, for `cosign attest --type spdxjson`. */
async function sbomOf(ref: string): Promise<unknown> {
  const name = ref.slice(ref.indexOf('/') + 1, ref.lastIndexOf(':'))
  const top = await registryManifest(name, ref.slice(ref.lastIndexOf(':') + 1))
  const att = top.manifest.manifests!.find(
    (m) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest',
  )!
  const layers = (await registryManifest(name, att.digest)).manifest.layers ?? []
  const layer = layers.find((l) => l.annotations?.['in-toto.io/predicate-type'] === 'https://spdx.dev/Document')!
  return ((await registryBlobJson(name, layer.digest)) as { predicate: unknown }).predicate
}

// Warm-up, untimed: the builder holds the base, the requirements layer and the scanner image.
for (const [i, [, attestations]] of SETTINGS.entries())
  await build('kserve', '1', { noCache: false, repo: repo(i), builder, attestations })

for (let t = 0; t < TRIALS; t++) {
  for (const [i, [what, attestations, how]] of SETTINGS.entries()) {
    const version = newModelVersion()
    const out = await build('kserve', version, {
      noCache: false,
      repo: repo(i, how?.fresh ? t : undefined),
      model: BENCH_MODEL,
      builder,
      attestations,
    })
    record(what, out.seconds)
    record(`${what}: buildx build + push`, out.phases['build+push']! / 1000)
    const scan = stepSeconds(out.lines, /generating sbom using/)
    if (scan !== undefined) record(`${what}: BuildKit's SBOM step`, scan)
    if (attestations.sbom && !how?.fresh) {
      record('cosign sign (key)', await elapsed(() => cosign.sign(out.image, signer)))
      const predicate = join(dir, 'sbom.spdx.json')
      writeFileSync(predicate, JSON.stringify(await sbomOf(out.ref)))
      const args = ['attest', '--yes', '--key', signer.key.path, '--tlog-upload=false', '--allow-http-registry']
      record(
        'cosign attest (key, the SBOM as spdxjson)',
        await elapsed(async () => {
          const res = await actionsExec(
            rigEnv('COSIGN_BIN'),
            [...args, '--type', 'spdxjson', '--predicate', predicate, out.image],
            { env: cosignEnv },
          )
          if (res.exitCode !== 0) throw new Error(`cosign attest: ${res.stderr}`)
        }),
      )
    }
  }
}

console.log(`
| rebuild of a new model version, warm BuildKit builder (kserve image) | median | trials |
|---|---|---|
${Object.entries(times)
  .map(([what, xs]) => `| ${what} | ${pct(xs, 0.5).toFixed(2)} s | ${xs.map((x) => x.toFixed(2)).join(', ')} |`)
  .join('\n')}
`)
