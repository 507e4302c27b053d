// The image stage against the rig: the real MLflow server (model facts, download), the real
// registries, the real dockerd + buildx, and MLflow's own pyfunc for cross-checks.
import { mlflowInputs } from '../../support/fixtures.js'
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { ImageInputs, Runtime } from '../../../src/inputs.js'
import { actionsExec, type Exec } from '../../../src/image/exec.js'
import {
  buildServingImage,
  createImageDeps,
  modelFacts,
  planServingImage,
  type ImageDeps,
  type ImagePlan,
  type ModelFacts,
} from '../../../src/image/index.js'
import { createMlflow, type Mlflow, type ModelDetails } from '../../../src/mlflow/index.js'
import { parseModelUri, type ModelRef } from '../../../src/mlflow/model-uri.js'
import { UndiciTransport, type HttpRequest, type HttpTransport } from '../../../src/util/http.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'

export const SLOW = 300_000
const run = promisify(execFile)

/** An MLflow transport that records every URL it fetched (to prove a plan downloads nothing). */
export class RecordingTransport implements HttpTransport {
  readonly urls: string[] = []
  private readonly inner = new UndiciTransport()
  request(req: HttpRequest) {
    this.urls.push(req.url)
    return this.inner.request(req)
  }
  close() {
    return this.inner.close()
  }
}

export function mlflowClient(http: HttpTransport, log = new MemoryLogger()): Mlflow {
  return createMlflow(mlflowInputs({ trackingUri: rigEnv('MLFLOW_URI') }), {
    getIdToken: async () => '',
    mask: () => {},
    env: {},
    log,
    http,
  })
}

export async function inspectModel(mlflow: Mlflow, uri: string): Promise<ModelDetails> {
  const ref = parseModelUri(uri)
  if (typeof ref === 'string') throw new Error(ref)
  return mlflow.inspect(await mlflow.resolve(ref as ModelRef))
}

export { modelFacts }

/** The rig's docker environment, for docker calls made by tests and by the action. */
export function dockerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { DOCKER_HOST: rigEnv('DOCKER_HOST'), ...extra }
}

export function imageDeps(
  opts: { dockerConfig?: string; exec?: Exec; env?: Record<string, string> } = {},
): ImageDeps & { log: MemoryLogger; masked: string[] } {
  const log = new MemoryLogger()
  const masked: string[] = []
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DOCKER_HOST: rigEnv('DOCKER_HOST'),
    DOCKER_CONFIG: opts.dockerConfig ?? '/nonexistent-docker-config',
    ...opts.env,
  }
  const deps = createImageDeps({ log, env, mask: (s) => masked.push(s), exec: opts.exec ?? actionsExec })
  return { ...deps, log, masked }
}

export type TestImageDeps = ReturnType<typeof imageDeps>

/**
 * Plan and build versions of the rig's fixture model through the action's image module, with one
 * suite's inputs (`inputs(over)`) and image deps (`deps()`: made when called, after beforeAll).
 */
export function fixtureImages(o: {
  readonly http: HttpTransport
  readonly inputs: (over?: Partial<ImageInputs>) => ImageInputs
  readonly deps: () => TestImageDeps
  /** The registered model; default the rig's fixture (FIXTURE_MODEL). */
  readonly model?: () => string
}) {
  const details = (version: string) =>
    inspectModel(mlflowClient(o.http), `models:/${(o.model ?? (() => rigEnv('FIXTURE_MODEL')))()}/${version}`)
  return {
    async plan(version: string, over: Partial<ImageInputs> = {}, d = o.deps()): Promise<ImagePlan> {
      const model = modelFacts(await details(version))
      return planServingImage(d, { image: o.inputs(over), model, generatorVersion: '0.1.0-it' })
    },
    /** `noCache`: a cold build, every layer new to the builder. */
    async build(version: string, p: ImagePlan, over: Partial<ImageInputs> = {}, d = o.deps(), noCache = false) {
      const mlflow = mlflowClient(o.http)
      const workDir = await mkdtemp(join(tmpdir(), 'it-model-'))
      const downloaded = await mlflow.download(await details(version), { workDir })
      return buildServingImage(d, {
        image: o.inputs(over),
        plan: p,
        modelDir: downloaded.dir,
        network: 'host',
        noCache,
      })
    },
  }
}

/** The rig's serving base of each runtime (parts/mlserver.sh, parts/kserve_base.sh). */
export const RIG_BASE: Record<Runtime, () => string> = {
  mlserver: () => rigEnv('BASE_IMAGE'),
  kserve: () => rigEnv('KSERVE_BASE_IMAGE'),
}

/** The image inputs of a build on the rig; MLServer unless `runtime` says otherwise. */
export function imageInputs(over: Partial<ImageInputs> = {}): ImageInputs {
  const runtime = over.runtime ?? 'mlserver'
  return {
    runtime,
    repository: `${rigEnv('REGISTRY')}/it-wine`,
    tag: undefined,
    baseImage: RIG_BASE[runtime](),
    build: 'auto',
    platforms: [],
    buildArgs: {},
    cacheFrom: [],
    cacheTo: [],
    ...over,
  }
}

export async function docker(args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  const res = await actionsExec(rigEnv('DOCKER_CLI'), args, { env: dockerEnv(extraEnv) })
  if (res.exitCode !== 0) throw new Error(`docker ${args.join(' ')}: ${res.stderr.trim().split('\n').pop()}`)
  return res.stdout.trim()
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** MLflow's own pyfunc predictions for a dataframe_split input, from the rig's MLflow venv. */
export async function pyfuncPredict(
  modelUri: string,
  split: { columns: string[]; data: unknown[][] },
): Promise<unknown[]> {
  const script = `
import json, sys, mlflow.pyfunc, pandas as pd
split = json.loads(sys.argv[2])
model = mlflow.pyfunc.load_model(sys.argv[1])
frame = pd.DataFrame(split["data"], columns=split["columns"])
# JSON has no int/float distinction: give each column the type the signature declares.
schema = model.metadata.get_input_schema()
if schema is not None and schema.has_input_names():
    frame = frame.astype({c.name: c.type.to_pandas() for c in schema.inputs})
pred = model.predict(frame)
print(json.dumps([x.item() if hasattr(x, "item") else x for x in list(pred)]))
`
  const { stdout } = await run(rigEnv('MLFLOW_PYTHON'), ['-c', script, modelUri, JSON.stringify(split)], {
    env: { ...process.env, MLFLOW_TRACKING_URI: rigEnv('MLFLOW_URI') },
    maxBuffer: 16 << 20,
  })
  return JSON.parse(stdout.trim().split('\n').pop()!) as unknown[]
}

/** Waits until the V2 model is ready, or throws with the container's log. */
export async function waitReady(url: string, container: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url)
      if (res.ok) return
    } catch {
      // not listening yet
    }
    const state = await docker(['inspect', '-f', '{{.State.Running}}', container]).catch(() => 'gone')
    if (state !== 'true') break
    await new Promise((r) => setTimeout(r, 500))
  }
  const logs = await docker(['logs', '--tail', '30', container]).catch((e: Error) => e.message)
  throw new Error(`${url} never became ready; container log:\n${logs}`)
}

/** The facts of a model directory on disk (a serving fixture), as the MLflow side would report them. */
export async function localModelFacts(dir: string, name: string, version = '1'): Promise<ModelFacts> {
  const files: { path: string; size: number }[] = []
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) await walk(p)
      else files.push({ path: p, size: (await stat(join(dir, p))).size })
    }
  }
  await walk('')
  const smallFiles: Record<string, Uint8Array> = {}
  for (const f of ['MLmodel', 'requirements.txt', 'conda.yaml']) {
    if (files.some((x) => x.path === f)) smallFiles[f] = await readFile(join(dir, f))
  }
  return modelFacts({ model: { name, version, runId: `local-${name}` }, files, smallFiles })
}

/** A dataframe_split input example as the smoke test sends it: one FP64 input per column. */
export function columnsRequest(split: { columns: string[]; data: number[][] }) {
  return {
    inputs: split.columns.map((c, j) => ({
      name: c,
      shape: [split.data.length],
      datatype: 'FP64',
      data: split.data.map((r) => r[j]),
    })),
  }
}

/** The environment that puts a serving container on `port` (each runtime reads its own variables). */
export async function servingEnv(runtime: Runtime, port: number): Promise<string[]> {
  if (runtime === 'kserve') return [`HTTP_PORT=${port}`]
  return [
    `MLSERVER_HTTP_PORT=${port}`,
    `MLSERVER_GRPC_PORT=${await freePort()}`,
    `MLSERVER_METRICS_PORT=${await freePort()}`,
  ]
}

export interface Serving {
  readonly url: string
  readonly container: string
}

/**
 * Runs a serving image on a free loopback port (--network host: the rig's dockerd has no bridge)
 * as the V2 model `model`, and waits until it is ready. Each runtime reads its own port variable.
 */
export async function runServing(image: string, runtime: Runtime, container: string, model: string): Promise<Serving> {
  const port = await freePort()
  const env = await servingEnv(runtime, port)
  await docker(['rm', '-f', container]).catch(() => undefined)
  await docker([
    'run',
    '-d',
    '--name',
    container,
    '--network',
    'host',
    ...[...env, `MLSERVER_MODEL_NAME=${model}`].flatMap((e) => ['-e', e]),
    image,
  ])
  const url = `http://127.0.0.1:${port}`
  await waitReady(`${url}/v2/models/${model}/ready`, container, 240_000)
  return { url, container }
}

/** POSTs a V2 inference request; the status and the parsed body. */
export async function infer(
  serving: Serving,
  model: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${serving.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(text) as Record<string, unknown>
  } catch {
    parsed = { raw: text }
  }
  return { status: res.status, body: parsed }
}

/**
 * Registers `name` with the fixture's `versions` (default 1 and 2), each with one more requirement:
 * an always-true marker unique to `mark`. Their requirements layer is new to the builder, built once
 * by the first build and taken from that one cache record by the next (a builder that built a step
 * several times, as the benchmarks' --no-cache builds do, may hand out any of its copies).
 */
export async function registerWithOwnRequirements(
  name: string,
  mark: string,
  versions: readonly string[] = ['1', '2'],
): Promise<void> {
  const script = `
import json, os, tempfile, mlflow
for v in json.loads(os.environ["VERSIONS"]):
    d = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{os.environ['FIXTURE']}/{v}", dst_path=tempfile.mkdtemp())
    with open(os.path.join(d, "requirements.txt"), "a") as f:
        f.write(f"\\npackaging; platform_release != '{os.environ['MARK']}'\\n")
    mlflow.set_experiment("it-own-requirements")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(d, "model")
    mlflow.register_model(f"runs:/{run.info.run_id}/model", os.environ["NAME"])
`
  await run(rigEnv('MLFLOW_PYTHON'), ['-c', script], {
    env: {
      ...process.env,
      MLFLOW_TRACKING_URI: rigEnv('MLFLOW_URI'),
      NAME: name,
      FIXTURE: rigEnv('FIXTURE_MODEL'),
      MARK: mark,
      VERSIONS: JSON.stringify(versions),
    },
    timeout: 180_000,
  })
}
