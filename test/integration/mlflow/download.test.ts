// Looking inside and downloading real models from the rig's MLflow servers, compared with what
// MLflow's Python client downloads for the same URI; caching in a directory and in the runner's
// tool cache. Nothing is skipped.
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { parseModelUri, type ModelRef } from '../../../src/mlflow/model-uri.js'
import { DirectoryCache, ToolCache } from '../../../src/mlflow/index.js'
import { downloadModel, listModelFiles } from '../../../src/mlflow/artifacts.js'
import { rigEnv } from '../rig-env.js'
import { SLOW, build, inputs, oidcInputs, pythonFiles, serverUri, type Built } from './helpers.js'

const ref = (uri: string): ModelRef => parseModelUri(uri) as ModelRef

function walk(dir: string): Record<string, number> {
  const out: Record<string, number> = {}
  const visit = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) visit(p)
      else out[relative(dir, p)] = statSync(p).size
    }
  }
  visit(dir)
  return out
}

let b: Built
beforeAll(() => {
  b = build(inputs('plain'))
})
afterAll(() => b.close())

test(
  'inspect: flavors, signature, input example and requirements without downloading',
  async () => {
    const model = await b.mlflow.resolve(ref(`models:/${rigEnv('FIXTURE_MODEL')}@champion`))
    const d = await b.mlflow.inspect(model)
    expect(d.files.map((f) => f.path)).toEqual(
      expect.arrayContaining(['MLmodel', 'requirements.txt', 'python_env.yaml']),
    )
    expect(Object.keys(d.mlmodel.flavors)).toEqual(expect.arrayContaining(['python_function', 'sklearn']))
    expect(d.mlmodel.pyfunc?.loaderModule).toBe('mlflow.sklearn')
    expect(d.mlmodel.modelId).toBe(model.modelId)
    expect(d.mlmodel.signature?.inputs?.length).toBe(13) // the wine data's 13 features
    expect(d.mlmodel.signature?.inputs?.[0]).toMatchObject({ kind: 'column', name: 'alcohol', type: 'double' })
    expect(d.inputExample?.servingPayload).toMatchObject({
      dataframe_split: { columns: expect.arrayContaining(['alcohol']) },
    })
    expect(d.requirements?.some((r) => r.startsWith('scikit-learn=='))).toBe(true)
    expect(d.pythonEnv?.python).toMatch(/^3\./)
    expect(d.smallFiles.MLmodel!.length).toBe(d.files.find((f) => f.path === 'MLmodel')!.size)
  },
  SLOW,
)

test.each([
  () => `models:/${rigEnv('FIXTURE_MODEL')}/2`,
  () => `runs:/${rigEnv('FIXTURE_RUN_ID')}/model`,
  () => `models:/${rigEnv('FIXTURE_MODEL_UNICODE')}@champion`,
])(
  "download %#: the same files and bytes as MLflow's Python client",
  async (uri) => {
    const model = await b.mlflow.resolve(ref(uri()))
    const details = await b.mlflow.inspect(model)
    const work = mkdtempSync(join(tmpdir(), 'mlflow-dl-'))
    const got = await b.mlflow.download(details, { workDir: work })
    expect(got.cacheHit).toBe(false)
    const expected = await pythonFiles(uri(), { MLFLOW_TRACKING_URI: serverUri('plain') })
    delete expected.registered_model_meta // written by the Python client after a models:/ download
    expect(walk(got.dir)).toEqual(expected)
    const sha = (p: string) =>
      createHash('sha256')
        .update(readFileSync(join(got.dir, p)))
        .digest('hex')
    expect(sha('MLmodel')).toBe(createHash('sha256').update(details.smallFiles.MLmodel!).digest('hex'))
    expect(readdirSync(work)).toEqual([`model-${got.key}`]) // no partial directories left behind
  },
  SLOW,
)

test(
  'directory cache: the second download is a hit',
  async () => {
    const model = await b.mlflow.resolve(ref(`models:/${rigEnv('FIXTURE_MODEL')}/1`))
    const details = await b.mlflow.inspect(model)
    const cache = new DirectoryCache(mkdtempSync(join(tmpdir(), 'mlflow-cache-')))
    const work = mkdtempSync(join(tmpdir(), 'mlflow-dl-'))
    const first = await b.mlflow.download(details, { workDir: work, cache })
    const second = await b.mlflow.download(details, { workDir: work, cache })
    expect([first.cacheHit, second.cacheHit, second.dir]).toEqual([false, true, first.dir])
  },
  SLOW,
)

test(
  'tool cache (RUNNER_TOOL_CACHE): the second download is a hit',
  async () => {
    const saved = { RUNNER_TOOL_CACHE: process.env.RUNNER_TOOL_CACHE, RUNNER_TEMP: process.env.RUNNER_TEMP }
    process.env.RUNNER_TOOL_CACHE = mkdtempSync(join(tmpdir(), 'toolcache-'))
    process.env.RUNNER_TEMP = mkdtempSync(join(tmpdir(), 'runnertemp-'))
    try {
      const model = await b.mlflow.resolve(ref(`models:/${rigEnv('FIXTURE_MODEL')}/1`))
      const details = await b.mlflow.inspect(model)
      const cache = new ToolCache()
      const first = await b.mlflow.download(details, { workDir: process.env.RUNNER_TEMP, cache })
      const second = await b.mlflow.download(details, { workDir: process.env.RUNNER_TEMP, cache })
      expect(first.dir.startsWith(process.env.RUNNER_TOOL_CACHE)).toBe(true)
      expect([first.cacheHit, second.cacheHit, second.dir]).toEqual([false, true, first.dir])
      expect(Object.keys(walk(first.dir)).sort()).toEqual(details.files.map((f) => f.path).sort())
    } finally {
      Object.assign(process.env, saved)
    }
  },
  SLOW,
)

test(
  'through the OIDC-protected server with client credentials',
  async () => {
    const o = build(
      inputs('oidc', {
        oidc: oidcInputs({
          issuer: rigEnv('OIDC_ISSUER'),
          clientId: rigEnv('OIDC_CLIENT_ID'),
          clientSecret: rigEnv('OIDC_CLIENT_SECRET'),
          audience: rigEnv('OIDC_AUDIENCE'),
        }),
      }),
    )
    try {
      const model = await o.mlflow.resolve(ref(`models:/${rigEnv('FIXTURE_MODEL')}/Production`))
      const details = await o.mlflow.inspect(model)
      const got = await o.mlflow.download(details, { workDir: mkdtempSync(join(tmpdir(), 'mlflow-dl-')) })
      expect(walk(got.dir)).toEqual(Object.fromEntries(details.files.map((f) => [f.path, f.size])))
    } finally {
      await o.close()
    }
  },
  SLOW,
)

test(
  'a file name with backslashes on the real server (a path on Windows runners) is refused, naming it and the server',
  async () => {
    // MLflow stores and lists such a name as is (Linux allows it); written on Windows it would
    // climb out of the download directory.
    const prefix = `it-defects-${Date.now().toString(36)}/model`
    const base = serverUri('plain')
    const put = async (name: string, body: string) => {
      const res = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${prefix}/${encodeURIComponent(name)}`, {
        method: 'PUT',
        body,
      })
      expect(res.status).toBe(200)
    }
    await put('MLmodel', 'flavors: {}\n')
    await put('evil\\..\\..\\x', 'x')
    const uri = `mlflow-artifacts:/${prefix}`
    const said = `MLflow at ${base} listed the artifact path "evil\\\\..\\\\..\\\\x" in ${uri}: it has a backslash, which could place a file outside the download directory; nothing was downloaded`
    const listed = await b.mlflow.client.listArtifacts(base, prefix)
    expect(listed.map((e) => e.path).sort()).toEqual(['MLmodel', 'evil\\..\\..\\x'])
    await expect(listModelFiles(b.mlflow.client, uri)).rejects.toThrow(said)
    const parent = mkdtempSync(join(tmpdir(), 'mlflow-dl-'))
    const files = listed.map((e) => ({ path: e.path, size: Number(e.file_size) }))
    await expect(downloadModel(b.mlflow.client, uri, files, join(parent, 'model'))).rejects.toThrow(said)
    expect(readdirSync(parent)).toEqual([])
  },
  SLOW,
)
