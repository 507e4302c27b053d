// Benchmark of the two serving runtimes side by side (issue 14), same model, same run:
//   node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/runtimes.ts [requests] [uv-pip]
// For kserve and mlserver: the wine model's image size, cold build + push (no layer cache),
// rebuild for a new version, container start -> model ready, and infer latency p50/p99 for 1 row
// and 1,000 rows over [requests] (default 200) sequential requests, each bounded by a timeout.
// Then the kserve cold build with pip instead of uv (build arg INSTALLER=pip).
// Needs the rig's docker, registry, mlserver, kserve_base, mlflow and fixtures parts.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { actionsExec } from '../src/image/exec.js'
import { buildServingImage, createImageDeps, modelFacts, planServingImage } from '../src/image/index.js'
import type { Runtime } from '../src/inputs.js'
import { createMlflow } from '../src/mlflow/index.js'
import { parseModelUri, type ModelRef } from '../src/mlflow/model-uri.js'
import { UndiciTransport } from '../src/util/http.js'
import { MemoryLogger } from '../test/support/memory-logger.js'
import { columnsRequest, freePort, imageInputs, servingEnv } from '../test/integration/image/helpers.js'
import { rigEnv } from '../test/integration/rig-env.js'
import { mlflowInputs } from '../test/support/fixtures.js'

const REQUESTS = Number(process.argv[2] ?? 200)
const START_TRIALS = 3
const RUN = Date.now().toString(36)
const MODEL = rigEnv('FIXTURE_MODEL')
const env = { ...process.env, DOCKER_HOST: rigEnv('DOCKER_HOST') }

const docker = (args: string[]) =>
  execFileSync(rigEnv('DOCKER_CLI'), args, { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 })
    .toString()
    .trim()
const deps = (log = new MemoryLogger()) =>
  createImageDeps({
    log,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_HOST: rigEnv('DOCKER_HOST') },
    mask: () => {},
    exec: actionsExec,
  })
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!
/** Resolve, inspect, plan, download, build, push: from nothing to a pushed digest. */
async function build(
  runtime: Runtime,
  version: string,
  o: { noCache: boolean; args?: Record<string, string>; repo: string; model?: string },
) {
  const http = new UndiciTransport()
  const mlflow = createMlflow(mlflowInputs({ trackingUri: rigEnv('MLFLOW_URI') }), {
    getIdToken: async () => '',
    mask: () => {},
    env: {},
    log: new MemoryLogger(),
    http,
  })
  const image = imageInputs({ runtime, repository: o.repo, buildArgs: o.args ?? {} })
  const t0 = performance.now()
  const phases: Record<string, number> = {}
  let mark = t0
  const phase = (name: string) => {
    const now = performance.now()
    phases[name] = Math.round(now - mark)
    mark = now
  }
  const details = await mlflow.inspect(
    await mlflow.resolve(parseModelUri(`models:/${o.model ?? MODEL}/${version}`) as ModelRef),
  )
  phase('resolve+inspect')
  const plan = await planServingImage(deps(), { image, model: modelFacts(details), generatorVersion: 'bench' })
  phase('plan')
  const work = mkdtempSync(join(tmpdir(), 'bench-runtime-'))
  const downloaded = await mlflow.download(details, { workDir: work })
  phase('download')
  const log = new MemoryLogger()
  const built = await buildServingImage(deps(log), {
    image,
    plan,
    modelDir: downloaded.dir,
    network: 'host',
    noCache: o.noCache,
  })
  phase('build+push')
  const seconds = (performance.now() - t0) / 1000
  if (process.env.VERBOSE)
    console.log(
      `${runtime} v${version}${o.noCache ? ' cold' : ''} ${JSON.stringify(o.args ?? {})}: ${seconds.toFixed(1)} s ${JSON.stringify(phases)} ms\n${stepTimes(log.lines)}`,
    )
  rmSync(work, { recursive: true, force: true })
  await http.close()
  return {
    seconds,
    phases,
    ref: plan.ref,
    image: built.image,
    example: details.smallFiles['input_example.json'],
    installSeconds: stepSeconds(log.lines, /install\.sh -r/),
  }
}

/** Every BuildKit step that took time: `  12.3 s  [2/7] RUN …` (VERBOSE=1). */
function stepTimes(lines: readonly string[]): string {
  const plain = lines.map((l) => l.replace(/^(debug|info): /, ''))
  const names = new Map<string, string>()
  for (const l of plain) {
    const m = /^#(\d+) (\[.*|exporting.*|pushing.*|writing.*|naming.*)$/.exec(l)
    if (m && !names.has(m[1]!)) names.set(m[1]!, m[2]!.slice(0, 100))
  }
  const out: string[] = []
  for (const l of plain) {
    const m = /^#(\d+) DONE (\d+\.\d+)s/.exec(l)
    if (m && Number(m[2]) >= 0.05) out.push(`  ${m[2]!.padStart(6)} s  ${names.get(m[1]!) ?? `#${m[1]}`}`)
    // uv's own account of its phases, and pip's last word.
    const u =
      /^#\d+ (\d+\.\d+) ((Resolved|Prepared|Installed|Uninstalled|Bytecode compiled|Successfully installed) .{0,80})/.exec(
        l,
      )
    if (u) out.push(`          at ${u[1]} s: ${u[2]}`)
  }
  return out.join('\n')
}

/** Where the rebuild trials register their versions: never the fixture model the tests read. */
const BENCH_MODEL = `${MODEL}-bench-rebuild`

/**
 * A new version of BENCH_MODEL: the fixture's version 2 files plus a file of random bytes, logged
 * to a new run and registered (MLflow's own client, outside the timed part). Returns its version.
 */
function newModelVersion(): string {
  const script = `
import os, sys, tempfile, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
name, bench = sys.argv[2], sys.argv[3]
src = mlflow.artifacts.download_artifacts(f"models:/{name}/2")
with open(os.path.join(src, "retrained.bin"), "wb") as f:
    f.write(os.urandom(1 << 20))
mlflow.set_experiment(bench)
with mlflow.start_run() as run:
    mlflow.log_artifacts(src, "model")
client = MlflowClient()
if not client.search_registered_models(f"name='{bench}'"):
    client.create_registered_model(bench)
v = client.create_model_version(bench, f"runs:/{run.info.run_id}/model", run.info.run_id)
print(v.version)
`
  return execFileSync(rigEnv('MLFLOW_PYTHON'), ['-c', script, rigEnv('MLFLOW_URI'), MODEL, BENCH_MODEL], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .toString()
    .trim()
    .split('\n')
    .at(-1)!
}

/** How long BuildKit says the step whose command matches `re` took (its `#N DONE 12.3s` line). */
function stepSeconds(lines: readonly string[], re: RegExp): number | undefined {
  const plain = lines.map((l) => l.replace(/^debug: /, ''))
  const id = plain.map((l) => (re.test(l) ? /^#(\d+) \[/.exec(l)?.[1] : undefined)).find(Boolean)
  const done = id ? plain.map((l) => new RegExp(`^#${id} DONE (\\d+\\.\\d+)s`).exec(l)?.[1]).find(Boolean) : undefined
  return done ? Number(done) : undefined
}

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
