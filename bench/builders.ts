// Benchmark of the two kinds of builder (issue 17), the kserve image of the wine model:
//   TRIALS=3 node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/builders.ts
// docker driver (BuildKit inside the rig's dockerd 20.10): cold = version 1 with --no-cache (the
// base image is in the daemon), rebuild = a new model version with the layer cache warm.
// BuildKit builder (the rig's buildkitd v0.34 through a buildx `remote` builder, what
// setup-buildx-action gives a job): cold = version 1 on an emptied builder (`buildx prune --all`:
// the base is pulled from the registry, as on a fresh runner), rebuild = a new model version on
// the warm builder; then what a job does across runs: a cold build that exports a registry cache
// (cache-to mode=max), and a new version on an emptied builder importing that cache (cache-from).
// Each rebuild is a genuinely new model version (model layer new to BuildKit and the registry).
// Needs the rig's docker, registry, buildkit, kserve_base, mlflow and fixtures parts.
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rigEnv } from '../test/integration/rig-env.js'
import { BENCH_MODEL, build, newModelVersion, pct, type BuildTrial } from './build-timing.js'

const TRIALS = Number(process.env.TRIALS ?? 1)
const RUN = Date.now().toString(36)
const dockerConfig = mkdtempSync(join(tmpdir(), 'bench-builders-'))
const docker = (args: string[]) =>
  execFileSync(rigEnv('DOCKER_CLI'), args, {
    env: { ...process.env, DOCKER_HOST: rigEnv('DOCKER_HOST'), DOCKER_CONFIG: dockerConfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
    .toString()
    .trim()
// As setup-buildx-action does in a job: a builder in the job's Docker config.
docker(['buildx', 'create', '--name', rigEnv('BUILDKIT_BUILDER'), '--driver', 'remote', rigEnv('BUILDKIT_ADDR')])
const builder = { name: rigEnv('BUILDKIT_BUILDER'), dockerConfig }
const emptyBuilder = () => docker(['buildx', 'prune', '--builder', builder.name, '--all', '--force'])

const times: Record<string, number[]> = {}
const time = async (what: string, version: string, o: BuildTrial) => {
  const s = (await build('kserve', version, o)).seconds
  ;(times[what] ??= []).push(s)
  console.log(`${what}: ${s.toFixed(1)} s`)
}

for (let i = 0; i < TRIALS; i++) {
  const repo = (what: string) => `${rigEnv('REGISTRY')}/bench-builders-${what}-${RUN}-${i}`
  await time('docker driver: cold', '1', { noCache: true, repo: repo('docker') })
  await time('docker driver: rebuild', newModelVersion(), { noCache: false, repo: repo('docker'), model: BENCH_MODEL })

  emptyBuilder()
  await time('BuildKit: cold', '1', { noCache: false, repo: repo('bk'), builder })
  await time('BuildKit: rebuild', newModelVersion(), { noCache: false, repo: repo('bk'), model: BENCH_MODEL, builder })

  const cache = `${repo('bk-cache')}:buildcache`
  emptyBuilder()
  await time('BuildKit: cold, exporting a registry cache', '1', {
    noCache: false,
    repo: repo('bk-cache'),
    builder,
    cacheTo: [`type=registry,ref=${cache},mode=max`],
  })
  emptyBuilder()
  await time('BuildKit: rebuild on an empty builder from the registry cache', newModelVersion(), {
    noCache: false,
    repo: repo('bk-cache'),
    model: BENCH_MODEL,
    builder,
    cacheFrom: [`type=registry,ref=${cache}`],
  })
}

console.log(`
| build (kserve image of the wine model, resolve to pushed digest) | median | trials |
|---|---|---|
${Object.entries(times)
  .map(([what, xs]) => `| ${what} | ${pct(xs, 0.5).toFixed(1)} s | ${xs.map((x) => x.toFixed(1)).join(', ')} |`)
  .join('\n')}
`)
