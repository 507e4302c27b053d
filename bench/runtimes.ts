// Benchmark of the two serving runtimes side by side (issue 14), same model, same run:
//   node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/runtimes.ts [requests] [uv-pip]
// For kserve and mlserver: the wine model's image size, cold build + push (no layer cache),
// rebuild for a new version, container start -> model ready, and infer latency p50/p99 for 1 row
// and 1,000 rows over [requests] (default 200) sequential requests, each bounded by a timeout.
// Then the kserve cold build with pip instead of uv (build arg INSTALLER=pip).
// Needs the rig's docker, registry, mlserver, kserve_base, mlflow and fixtures parts.
import { execFileSync } from 'node:child_process'
import type { Runtime } from '../src/inputs.js'
import { columnsRequest, freePort, imageInputs, servingEnv } from '../test/integration/image/helpers.js'
import { rigEnv } from '../test/integration/rig-env.js'
import { BENCH_MODEL, build, newModelVersion, pct } from './build-timing.js'

const REQUESTS = Number(process.argv[2] ?? 200)
const START_TRIALS = 3
const RUN = Date.now().toString(36)
const env = { ...process.env, DOCKER_HOST: rigEnv('DOCKER_HOST') }

const docker = (args: string[]) =>
  execFileSync(rigEnv('DOCKER_CLI'), args, { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 })
    .toString()
    .trim()
/** docker run -> /v2/models/<name>/ready answers 200, in seconds; the container keeps running. */
async function start(runtime: Runtime, image: string, name: string) {
  const port = await freePort()
  const vars = await servingEnv(runtime, port)
  docker(['rm', '-f', name])
  const t0 = performance.now()
  docker([
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    ...[...vars, 'MLSERVER_MODEL_NAME=wine'].flatMap((v) => ['-e', v]),
    image,
  ])
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (performance.now() - t0 > 300_000) throw new Error(`${name} not ready after 300 s`)
    const ok = await fetch(`${url}/v2/models/wine/ready`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.ok)
      .catch(() => false)
    if (ok) return { url, seconds: (performance.now() - t0) / 1000 }
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The V2 request of `rows` rows: the input example's rows, repeated. */
function request(example: Uint8Array, rows: number) {
  const split = JSON.parse(Buffer.from(example).toString('utf8')) as { columns: string[]; data: number[][] }
  const data = Array.from({ length: rows }, (_, i) => split.data[i % split.data.length]!)
  return JSON.stringify(columnsRequest({ columns: split.columns, data }))
}

/** p50/p99 in ms over REQUESTS sequential requests after 10 warm-up ones, each bounded by 30 s. */
async function latency(url: string, body: string, rows: number) {
  const once = async () => {
    const t0 = performance.now()
    const res = await fetch(`${url}/v2/models/wine/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(30_000),
    })
    const out = (await res.json()) as { outputs?: { data: unknown[] }[] }
    if (!res.ok || out.outputs?.[0]?.data.length !== rows)
      throw new Error(`bad answer ${res.status}: ${JSON.stringify(out).slice(0, 200)}`)
    return performance.now() - t0
  }
  for (let i = 0; i < 10; i++) await once()
  const ms: number[] = []
  for (let i = 0; i < REQUESTS; i++) ms.push(await once())
  return { p50: pct(ms, 0.5), p99: pct(ms, 0.99) }
}

const size = (ref: string) => Number(docker(['image', 'inspect', '-f', '{{.Size}}', ref])) / 1e6
const rows: string[] = []
const containers: string[] = []
// `uv-pip` as the second argument: only the installer comparison; `rebuild`: only rebuild trials.
const MODE = process.argv[3]
const RUNTIMES: Runtime[] = MODE === 'uv-pip' || MODE === 'rebuild' ? [] : ['kserve', 'mlserver']
if (MODE === 'rebuild') {
  // Per runtime and trial: the image of version 2 is in the repository (warm layer cache); then a
  // new model version, with the same requirements and new model bytes (so its model layer is new
  // to BuildKit and to the registry, as a retrained model's is), is timed from resolve to pushed.
  const trials = Number(process.env.TRIALS ?? 5)
  for (const runtime of ['kserve', 'mlserver'] as const) {
    const times: number[] = []
    const repo = `${rigEnv('REGISTRY')}/bench-rebuild-${runtime}-${RUN}`
    await build(runtime, '2', { noCache: false, repo })
    for (let i = 0; i < trials; i++) {
      const version = newModelVersion()
      times.push((await build(runtime, version, { noCache: false, repo, model: BENCH_MODEL })).seconds)
    }
    console.log(
      `${runtime} rebuild: median ${pct(times, 0.5).toFixed(2)} s, max ${Math.max(...times).toFixed(2)} s (${times.map((t) => t.toFixed(2)).join(', ')})`,
    )
  }
  process.exit(0)
}
try {
  for (const runtime of RUNTIMES) {
    const repo = `${rigEnv('REGISTRY')}/bench-${runtime}-${RUN}`
    const cold = await build(runtime, '1', { noCache: true, repo })
    const rebuild = await build(runtime, '2', { noCache: false, repo })
    const starts: number[] = []
    let url = ''
    for (let i = 0; i < START_TRIALS; i++) {
      const name = `bench-${runtime}-${RUN}`
      containers.push(name)
      const s = await start(runtime, rebuild.image, name)
      starts.push(s.seconds)
      url = s.url
      if (i < START_TRIALS - 1) docker(['rm', '-f', name])
    }
    const one = await latency(url, request(rebuild.example!, 1), 1)
    const thousand = await latency(url, request(rebuild.example!, 1000), 1000)
    const line = {
      runtime,
      base: size(imageInputs({ runtime }).baseImage),
      image: size(rebuild.ref),
      cold: cold.seconds,
      rebuild: rebuild.seconds,
      start: pct(starts, 0.5),
      one,
      thousand,
    }
    console.log(JSON.stringify(line))
    rows.push(
      `| ${runtime} | ${line.image.toFixed(0)} MB (base ${line.base.toFixed(0)} MB) | ${line.cold.toFixed(1)} s | ${line.rebuild.toFixed(1)} s | ${line.start.toFixed(1)} s (median of ${START_TRIALS}: ${starts.map((s) => s.toFixed(1)).join(', ')}) | ${one.p50.toFixed(1)} / ${one.p99.toFixed(1)} ms | ${thousand.p50.toFixed(1)} / ${thousand.p99.toFixed(1)} ms |`,
    )
    for (const c of containers.splice(0)) docker(['rm', '-f', c])
  }
  // uv vs pip: the kserve cold build again, the same requirements installed by pip.
  const repo = `${rigEnv('REGISTRY')}/bench-kserve-pip-${RUN}`
  const pip = await build('kserve', '1', { noCache: true, repo, args: { INSTALLER: 'pip' } })
  const uv = await build('kserve', '1', { noCache: true, repo: `${rigEnv('REGISTRY')}/bench-kserve-uv-${RUN}` })
  console.log(
    JSON.stringify({
      pipCold: pip.seconds,
      uvCold: uv.seconds,
      pipInstall: pip.installSeconds,
      uvInstall: uv.installSeconds,
    }),
  )
  console.log(`
| runtime | image size | cold build + push | rebuild, new version | start -> ready | 1 row p50 / p99 | 1,000 rows p50 / p99 |
|---|---|---|---|---|---|---|
${rows.join('\n')}

kserve cold build + push: uv ${uv.seconds.toFixed(1)} s, pip ${pip.seconds.toFixed(1)} s (${(pip.seconds / uv.seconds).toFixed(1)}x); the requirements step alone: uv ${uv.installSeconds} s, pip ${pip.installSeconds} s
`)
} finally {
  for (const c of containers) docker(['rm', '-f', c])
}
