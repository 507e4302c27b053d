// What the image benchmarks share: one timed build from model URI to pushed digest through the
// action's own plan and build (docker driver or a named buildx builder), and new model versions
// whose model layer is new to BuildKit and to the registry. Needs the rig's docker, registry,
// mlflow and fixtures parts (and a base part for the runtime built).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { actionsExec } from '../src/image/exec.js'
import {
  buildServingImage,
  createImageDeps,
  modelFacts,
  planServingImage,
  type Attestations,
  type Compression,
} from '../src/image/index.js'
import type { Runtime } from '../src/inputs.js'
import { createMlflow } from '../src/mlflow/index.js'
import { parseModelUri, type ModelRef } from '../src/mlflow/model-uri.js'
import { UndiciTransport } from '../src/util/http.js'
import { MemoryLogger } from '../test/support/memory-logger.js'
import { imageInputs } from '../test/integration/image/helpers.js'
import { rigEnv } from '../test/integration/rig-env.js'
import { mlflowInputs } from '../test/support/fixtures.js'

const MODEL = rigEnv('FIXTURE_MODEL')

const deps = (log = new MemoryLogger(), dockerConfig?: string) =>
  createImageDeps({
    log,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DOCKER_HOST: rigEnv('DOCKER_HOST'),
      ...(dockerConfig ? { DOCKER_CONFIG: dockerConfig } : {}),
    },
    mask: () => {},
    exec: actionsExec,
  })
export const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!
export interface BuildTrial {
  readonly noCache: boolean
  readonly args?: Record<string, string>
  readonly repo: string
  readonly model?: string
  /** A buildx builder and the Docker config dir that holds it; default: the docker driver. */
  readonly builder?: { readonly name: string; readonly dockerConfig: string }
  readonly cacheFrom?: readonly string[]
  readonly cacheTo?: readonly string[]
  /** sbom and provenance, as the inputs give them; default: BuildKit's defaults. */
  readonly attestations?: Attestations
  /** Layer compression of the push; default gzip. */
  readonly compression?: Compression
}

/** Resolve, inspect, plan, download, build, push: from nothing to a pushed digest. */
export async function build(runtime: Runtime, version: string, o: BuildTrial) {
  const http = new UndiciTransport()
  const mlflow = createMlflow(mlflowInputs({ trackingUri: rigEnv('MLFLOW_URI') }), {
    getIdToken: async () => '',
    mask: () => {},
    env: {},
    log: new MemoryLogger(),
    http,
  })
  const image = imageInputs({
    runtime,
    repository: o.repo,
    buildArgs: o.args ?? {},
    builder: o.builder?.name,
    cacheFrom: o.cacheFrom ?? [],
    cacheTo: o.cacheTo ?? [],
    attestations: o.attestations,
    compression: o.compression,
  })
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
  const plan = await planServingImage(deps(undefined, o.builder?.dockerConfig), {
    image,
    model: modelFacts(details),
    generatorVersion: 'bench',
  })
  phase('plan')
  const work = mkdtempSync(join(tmpdir(), 'bench-runtime-'))
  const downloaded = await mlflow.download(details, { workDir: work })
  phase('download')
  const log = new MemoryLogger()
  const built = await buildServingImage(deps(log, o.builder?.dockerConfig), {
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
      `${runtime} v${version}${o.noCache ? ' cold' : ''}${o.builder ? ` on ${o.builder.name}` : ''}${o.compression ? ` ${o.compression}` : ''} ${JSON.stringify(o.args ?? {})}: ${seconds.toFixed(1)} s ${JSON.stringify(phases)} ms\n${stepTimes(log.lines)}`,
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
    lines: log.lines,
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
export const BENCH_MODEL = `${MODEL}-bench-rebuild`

/**
 * A new version of BENCH_MODEL: the fixture's version 2 files plus a file of random bytes, logged
 * to a new run and registered (MLflow's own client, outside the timed part). Returns its version.
 */
export function newModelVersion(): string {
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
export function stepSeconds(lines: readonly string[], re: RegExp): number | undefined {
  const plain = lines.map((l) => l.replace(/^debug: /, ''))
  const id = plain.map((l) => (re.test(l) ? /^#(\d+) \[/.exec(l)?.[1] : undefined)).find(Boolean)
  const done = id ? plain.map((l) => new RegExp(`^#${id} DONE (\\d+\\.\\d+)s`).exec(l)?.[1]).find(Boolean) : undefined
  return done ? Number(done) : undefined
}
