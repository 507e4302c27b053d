// Both serving runtimes for real: each fixture model (fixtures/serving_models.py: a tensor model, a
// string column, no signature, LightGBM, a pyfunc returning a dict of arrays) and the MLflow
// wine model are built into a kserve image and an MLServer image by the action's own plan and
// build, run, and sent the same V2 request. Both must answer what mlflow.pyfunc predicts on the
// same rows, and answer bad requests with 400 naming the input. Then a request encoded by
// MLServer's own codecs (content types included) must get the same answer from both.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { buildServingImage, planServingImage } from '../../../src/image/index.js'
import type { Runtime } from '../../../src/inputs.js'
import { rigEnv } from '../rig-env.js'
import {
  columnsRequest,
  docker,
  imageDeps,
  imageInputs,
  infer,
  inspectModel,
  localModelFacts,
  mlflowClient,
  modelFacts,
  pyfuncPredict,
  RecordingTransport,
  runServing,
  type Serving,
} from './helpers.js'

const RUN = Date.now().toString(36)
const RUNTIMES: Runtime[] = ['kserve', 'mlserver']
const CASES = ['tensor', 'strings', 'nosig', 'lightgbm', 'dictout'] as const
const LONG = 900_000
const run = promisify(execFile)

interface Case {
  request: { inputs: { name: string; data: unknown[] }[] }
  /** pyfunc's prediction: a list (array, Series), {columns, data} (DataFrame) or {name: list}. */
  expected: unknown
  bad: { request: unknown; input: string[] }[]
  /** Requests the model's own code raises on. */
  failing: unknown[]
}

const caseOf = (name: string): Case =>
  JSON.parse(readFileSync(join(rigEnv('SERVING_MODELS_DIR'), name, 'case.json'), 'utf8')) as Case
const servings = new Map<string, Serving>()
const http = new RecordingTransport()

afterAll(async () => {
  for (const s of servings.values()) await docker(['rm', '-f', s.container]).catch(() => undefined)
  await http.close()
})

/** Plans, builds and pushes `modelDir` for `runtime` with the action's code; the pinned image. */
async function build(
  runtime: Runtime,
  name: string,
  modelDir: string,
  facts: Parameters<typeof planServingImage>[1]['model'],
) {
  const deps = imageDeps()
  const image = imageInputs({ runtime, repository: `${rigEnv('REGISTRY')}/it-serve-${name}-${RUN}` })
  const plan = await planServingImage(deps, { image, model: facts, generatorVersion: '0.1.0-it' })
  expect(plan.identity.input.runtime.name).toBe(runtime)
  const built = await buildServingImage(deps, { image, plan, modelDir, network: 'host' })
  return built.image
}

/** The rig's wine model, version 1, from the registry: its URI, what MLflow says of it, its files. */
async function wineModel() {
  const uri = `models:/${rigEnv('FIXTURE_MODEL')}/1`
  const mlflow = mlflowClient(http)
  const details = await inspectModel(mlflow, uri)
  const downloaded = await mlflow.download(details, { workDir: await mkdtemp(join(tmpdir(), 'it-serve-')) })
  return { uri, details, dir: downloaded.dir }
}

async function serve(runtime: Runtime, name: string): Promise<Serving> {
  const key = `${runtime}/${name}`
  const ready = servings.get(key)
  if (ready) return ready
  const dir = join(rigEnv('SERVING_MODELS_DIR'), name, 'model')
  const image = await build(runtime, name, dir, await localModelFacts(dir, name))
  const serving = await runServing(image, runtime, `it-serve-${name}-${runtime}-${RUN}`, name)
  servings.set(key, serving)
  return serving
}

/** The response's outputs in the shape of pyfunc's prediction (see Case.expected). */
function predictionOf(body: Record<string, unknown>, expected: unknown): unknown {
  const outputs = body['outputs'] as { name: string; data: unknown[] }[]
  if (Array.isArray(expected)) return outputs[0]?.data
  const e = expected as Record<string, unknown>
  if (Array.isArray(e['columns'])) return { columns: outputs.map((o) => o.name), data: outputs.map((o) => o.data) }
  return Object.fromEntries(outputs.map((o) => [o.name, o.data]))
}

/** Equal, numbers within 1e-9 relative (the same arithmetic in another process). */
function expectClose(actual: unknown, expected: unknown, path = '$'): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    if (Math.abs(actual - expected) > 1e-9 * Math.max(1, Math.abs(expected)))
      throw new Error(`${path}: ${actual} != ${expected}`)
    return
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length)
      throw new Error(`${path}: ${JSON.stringify(actual)?.slice(0, 200)} != ${JSON.stringify(expected).slice(0, 200)}`)
    expected.forEach((v, i) => expectClose(actual[i], v, `${path}[${i}]`))
    return
  }
  if (expected && typeof expected === 'object') {
    if (!actual || typeof actual !== 'object') throw new Error(`${path}: ${JSON.stringify(actual)} is not an object`)
    expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort())
    for (const [k, v] of Object.entries(expected))
      expectClose((actual as Record<string, unknown>)[k], v, `${path}.${k}`)
    return
  }
  expect(actual).toEqual(expected)
}

describe.each(RUNTIMES)('%s image', (runtime) => {
  test.each(CASES)(
    '%s: the same V2 request predicts what mlflow.pyfunc predicts; bad requests 400 naming the input, model failures 500',
    async (name) => {
      const c = caseOf(name)
      const serving = await serve(runtime, name)
      const res = await infer(serving, name, c.request)
      expect([res.status, res.body['error']]).toEqual([200, undefined])
      expect(res.body['model_name']).toBe(name)
      expectClose(predictionOf(res.body, c.expected), c.expected)

      for (const bad of c.bad) {
        const answer = await infer(serving, name, bad.request)
        const error = String(answer.body['error'] ?? JSON.stringify(answer.body))
        expect({ status: answer.status, names: bad.input.some((i) => error.includes(i)), error }).toEqual({
          status: 400,
          names: true,
          error,
        })
      }
      for (const failing of c.failing) {
        const answer = await infer(serving, name, failing)
        expect([answer.status, typeof answer.body['error']]).toEqual([500, 'string'])
      }
    },
    LONG,
  )

  test(
    'the MLflow wine model (registry, columns): the smoke-test request predicts what pyfunc predicts',
    async () => {
      const { uri, details, dir } = await wineModel()
      const image = await build(runtime, 'wine', dir, modelFacts(details))
      const serving = await runServing(image, runtime, `it-serve-wine-${runtime}-${RUN}`, 'wine')
      servings.set(`${runtime}/wine`, serving)
      const split = JSON.parse(Buffer.from(details.smallFiles['input_example.json']!).toString('utf8')) as {
        columns: string[]
        data: number[][]
      }
      const res = await infer(serving, 'wine', columnsRequest(split))
      expect([res.status, res.body['error']]).toEqual([200, undefined])
      expect((res.body['outputs'] as { data: unknown[] }[])[0]!.data).toEqual(await pyfuncPredict(uri, split))
    },
    LONG,
  )
})

test(
  "kserve image: bytecode for every module the model's requirements installed, none for those packages' own tests",
  async () => {
    const { details, dir } = await wineModel()
    // The kserve base has no scikit-learn: the wine model's requirements install it.
    const image = await build('kserve', 'wine', dir, modelFacts(details))
    const script = `
import importlib.util, json, os, sys
root = os.path.dirname(importlib.util.find_spec("sklearn").origin)
tag = sys.implementation.cache_tag
modules, missing, tests = 0, [], 0
for d, dirs, names in os.walk(root):
    parts = d[len(root):].split(os.sep)
    for n in names:
        if "__pycache__" in parts:
            tests += "tests" in parts and n.endswith(".pyc")
        elif n.endswith(".py") and "tests" not in parts:
            modules += 1
            if not os.path.exists(os.path.join(d, "__pycache__", f"{n[:-3]}.{tag}.pyc")):
                missing.append(os.path.join(d, n))
print(json.dumps({"modules": modules, "missing": missing[:5], "testsPyc": tests}))
`
    const out = await docker(['run', '--rm', '--network', 'host', '--entrypoint', 'python', image, '-c', script])
    const seen = JSON.parse(out) as { modules: number; missing: string[]; testsPyc: number }
    expect(seen.modules).toBeGreaterThan(200)
    expect(seen.missing).toEqual([])
    expect(seen.testsPyc).toBe(0)
  },
  LONG,
)

/** A request as MLServer's own Python codecs encode it (mlserver.codecs in the rig's MLServer venv). */
async function mlserverEncoded(script: string): Promise<unknown> {
  const { stdout } = await run(join(rigEnv('MLSERVER_VENV'), 'bin', 'python'), ['-c', script], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout)
}

describe('requests encoded by MLServer clients get the same answer from both images', () => {
  test.each([
    [
      'strings',
      `import json, pandas as pd
from mlserver.codecs import PandasCodec
# object dtype: MLServer 1.7.1's codec knows no pandas 3 "str" dtype (KeyError 'O').
df = pd.DataFrame({"city": pd.Series(["paris", "oslo", "rome", "berlin"], dtype=object), "amount": [55.0, 80.5, 12.25, 99.0]})
print(PandasCodec.encode_request(df, use_bytes=False).model_dump_json(exclude_none=True))`,
    ],
    [
      'tensor',
      `import json, numpy as np
from mlserver.codecs import NumpyRequestCodec
case = json.load(open(${JSON.stringify(join('__DIR__', 'tensor', 'case.json'))}))
x = np.array(case["request"]["inputs"][0]["data"], dtype=np.float32).reshape(5, 4)
print(NumpyRequestCodec.encode_request(x).model_dump_json(exclude_none=True))`,
    ],
  ])(
    '%s',
    async (name, script) => {
      const request = await mlserverEncoded(script.replace('__DIR__', rigEnv('SERVING_MODELS_DIR')))
      // Content types travel as MLServer clients send them.
      expect(JSON.stringify(request)).toMatch(/"content_type":"(pd|np)"/)
      const c = caseOf(name)
      const answers = []
      for (const runtime of RUNTIMES) {
        const res = await infer(await serve(runtime, name), name, request)
        expect([runtime, res.status, res.body['error']]).toEqual([runtime, 200, undefined])
        answers.push(predictionOf(res.body, c.expected))
      }
      expectClose(answers[0], c.expected)
      expectClose(answers[1], answers[0])
    },
    LONG,
  )
})
