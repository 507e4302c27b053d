// Benchmark of the compression input (issues 14 and 17), the kserve image of the wine model:
//   TRIALS=3 node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/compression.ts
// On the rig's BuildKit (a buildx `remote` builder, the base already in it), each trial makes four
// cold builds (--no-cache: every step runs, every layer is new): uv and pip, each pushed with gzip
// and with zstd, through the action's plan and build, resolve to pushed digest. Then the real
// node's containerd pulls and unpacks the uv images, gzip and zstd (the base's layers are already
// on the node, so what it fetches is the requirements, server and model layers), and forgets them.
// Needs the rig's docker, registry, buildkit, kserve_base, node, mlflow and fixtures parts.
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Compression } from '../src/image/index.js'
import { rigEnv } from '../test/integration/rig-env.js'
import { build, pct } from './build-timing.js'

const TRIALS = Number(process.env.TRIALS ?? 3)
const RUN = Date.now().toString(36)
const dockerConfig = mkdtempSync(join(tmpdir(), 'bench-compression-'))
execFileSync(
  rigEnv('DOCKER_CLI'),
  ['buildx', 'create', '--name', rigEnv('BUILDKIT_BUILDER'), '--driver', 'remote', rigEnv('BUILDKIT_ADDR')],
  { env: { ...process.env, DOCKER_HOST: rigEnv('DOCKER_HOST'), DOCKER_CONFIG: dockerConfig }, stdio: 'ignore' },
)
const builder = { name: rigEnv('BUILDKIT_BUILDER'), dockerConfig }

// The node's containerd, in the namespace the kubelet uses.
const ctr = (args: string[]) =>
  execFileSync(rigEnv('NODE_CTR'), ['--address', rigEnv('NODE_CONTAINERD_ADDRESS'), '--namespace', 'k8s.io', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
/** Seconds for the node to pull and unpack `image`; the image is removed again afterwards. */
function nodePull(image: string): number {
  const t0 = performance.now()
  ctr(['images', 'pull', '--plain-http', image])
  const s = (performance.now() - t0) / 1000
  ctr(['images', 'rm', '--sync', image])
  return s
}
/** What BuildKit's `exporting to image` step took: compressing the new layers and pushing them. */
function exportSeconds(lines: readonly string[]): number | undefined {
  const plain = lines.map((l) => l.replace(/^(debug|info): /, ''))
  const id = plain.map((l) => /^#(\d+) exporting to image$/.exec(l)?.[1]).find(Boolean)
  const done = plain.map((l) => new RegExp(`^#${id} DONE (\\d+\\.\\d+)s`).exec(l)?.[1]).find(Boolean)
  return done ? Number(done) : undefined
}

// The base's layers on the node before any timing: they are not what compression changes.
ctr(['images', 'pull', '--plain-http', `${rigEnv('KSERVE_BASE_IMAGE')}@${rigEnv('KSERVE_BASE_IMAGE_DIGEST')}`])

const times: Record<string, number[]> = {}
const add = (what: string, s: number | undefined) => {
  if (s === undefined) return
  ;(times[what] ??= []).push(s)
  console.log(`${what}: ${s.toFixed(2)} s`)
}
for (let i = 0; i < TRIALS; i++) {
  const images: Partial<Record<Compression, string>> = {}
  for (const installer of ['uv', 'pip'] as const) {
    for (const compression of ['gzip', 'zstd'] as const) {
      const b = await build('kserve', '1', {
        noCache: true,
        repo: `${rigEnv('REGISTRY')}/bench-compression-${installer}-${compression}-${RUN}-${i}`,
        builder,
        compression,
        args: { INSTALLER: installer },
      })
      add(`cold build, ${installer}, ${compression}`, b.seconds)
      add(`… exporting to image (compress + push), ${installer}, ${compression}`, exportSeconds(b.lines))
      if (installer === 'uv') images[compression] = b.image
    }
  }
  for (const compression of ['gzip', 'zstd'] as const)
    add(`node pull + unpack, uv image, ${compression}`, nodePull(images[compression]!))
}

const median = (what: string) => pct(times[what] ?? [NaN], 0.5)
console.log(`
| what (kserve image of the wine model, BuildKit builder, ${TRIALS} trials) | median | trials |
|---|---|---|
${Object.entries(times)
  .map(([what, xs]) => `| ${what} | ${pct(xs, 0.5).toFixed(2)} s | ${xs.map((x) => x.toFixed(2)).join(', ')} |`)
  .join('\n')}

uv vs pip, whole cold build: gzip ${(median('cold build, pip, gzip') / median('cold build, uv, gzip')).toFixed(2)}x, zstd ${(median('cold build, pip, zstd') / median('cold build, uv, zstd')).toFixed(2)}x
zstd vs gzip, uv cold build: ${(median('cold build, uv, gzip') / median('cold build, uv, zstd')).toFixed(2)}x; node pull: ${(median('node pull + unpack, uv image, gzip') / median('node pull + unpack, uv image, zstd')).toFixed(2)}x
`)
