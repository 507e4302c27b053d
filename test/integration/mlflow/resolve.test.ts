// Model URI resolution against the real plain MLflow server, cross-checked with MLflow's own
// Python client, and the faults a real server produces. Nothing is skipped: an unreachable rig
// fails these tests.
import { parseModelUri, type ModelRef } from '../../../src/mlflow/model-uri.js'
import type { ResolvedModel } from '../../../src/mlflow/index.js'
import { rigEnv } from '../rig-env.js'
import { SLOW, build, deleteRegisteredModel, inputs, python, pythonResolve, serverUri, type Built } from './helpers.js'

const ref = (uri: string): ModelRef => {
  const r = parseModelUri(uri)
  if (typeof r === 'string') throw new Error(r)
  return r
}

let b: Built
beforeAll(() => {
  b = build(inputs('plain'))
})
afterAll(() => b.close())

const resolve = (uri: string): Promise<ResolvedModel> => b.mlflow.resolve(ref(uri))

const MODEL = () => rigEnv('FIXTURE_MODEL')

describe('every URI form against the plain server', () => {
  test(
    'version, alias, stage (any case), latest resolve to the fixture versions',
    async () => {
      const m = MODEL()
      const cases: [string, string][] = [
        [`models:/${m}/1`, '1'],
        [`models:/${m}/2`, '2'],
        [`models:/${m}@${rigEnv('FIXTURE_ALIAS')}`, rigEnv('FIXTURE_ALIAS_VERSION')],
        [`models:/${m}/Staging`, rigEnv('FIXTURE_STAGING_VERSION')],
        [`models:/${m}/production`, rigEnv('FIXTURE_PRODUCTION_VERSION')],
        [`models:/${m}/PRODUCTION`, rigEnv('FIXTURE_PRODUCTION_VERSION')],
      ]
      for (const [uri, version] of cases) {
        const r = await resolve(uri)
        expect({ uri, name: r.name, version: r.version, status: r.status }).toEqual({
          uri,
          name: m,
          version,
          status: 'READY',
        })
        // MLflow 3: source is the logged model, the real location is its artifact directory.
        expect(r.artifactUri).toMatch(/^mlflow-artifacts:\/.+\/models\/m-[0-9a-f]+\/artifacts$/)
        expect(r.modelId).toMatch(/^m-[0-9a-f]{32}$/)
        expect(r.runId).toMatch(/^[0-9a-f]{32}$/)
      }
      expect((await resolve(`models:/${m}@champion`)).aliases).toContain('champion')
      const latest = await resolve(`models:/${m}/latest`)
      const versions = rigEnv('FIXTURE_VERSIONS').split(',').map(Number)
      expect(Number(latest.version)).toBeGreaterThanOrEqual(Math.max(...versions))
    },
    SLOW,
  )

  test(
    'runs:/<run_id>/model resolves to the run artifacts',
    async () => {
      const runId = rigEnv('FIXTURE_RUN_ID')
      const r = await resolve(`runs:/${runId}/${rigEnv('FIXTURE_RUN_MODEL_PATH')}`)
      expect([r.runId, r.name, r.version]).toEqual([runId, undefined, undefined])
      expect(r.artifactUri).toMatch(new RegExp(`^mlflow-artifacts:/.*/${runId}/artifacts/model$`))
    },
    SLOW,
  )

  test(
    'models:/m-<id> (MLflow 3 logged model)',
    async () => {
      const v1 = await resolve(`models:/${MODEL()}/1`)
      const r = await resolve(`models:/${v1.modelId}`)
      expect(r).toMatchObject({ modelId: v1.modelId, artifactUri: v1.artifactUri, runId: v1.runId })
    },
    SLOW,
  )

  test(
    'names with dots and mixed case, spaces and unicode',
    async () => {
      for (const key of ['FIXTURE_MODEL_DOTTED', 'FIXTURE_MODEL_SPACE', 'FIXTURE_MODEL_UNICODE']) {
        const name = rigEnv(key)
        for (const uri of [
          `models:/${name}/${rigEnv('FIXTURE_ODD_MODEL_VERSION')}`,
          `models:/${name}@champion`,
          `models:/${name}/latest`,
        ]) {
          const r = await resolve(uri)
          expect({ uri, name: r.name }).toEqual({ uri, name })
          expect(r.artifactUri).toMatch(/^mlflow-artifacts:\//)
        }
      }
    },
    SLOW,
  )

  test(
    "cross-check: the same answers as MLflow's Python client on the same server",
    async () => {
      const m = MODEL()
      const v1 = await resolve(`models:/${m}/1`)
      const uris = [
        `models:/${m}/1`,
        `models:/${m}/2`,
        `models:/${m}@champion`,
        `models:/${m}/Staging`,
        `models:/${m}/production`,
        `models:/${m}/latest`,
        `models:/${rigEnv('FIXTURE_MODEL_DOTTED')}/1`,
        `models:/${rigEnv('FIXTURE_MODEL_SPACE')}@champion`,
        `models:/${rigEnv('FIXTURE_MODEL_UNICODE')}/latest`,
        `models:/${v1.modelId}`,
        `runs:/${rigEnv('FIXTURE_RUN_ID')}/model`,
      ]
      const expected = await pythonResolve(uris, { MLFLOW_TRACKING_URI: serverUri('plain') })
      const ours = []
      for (const uri of uris) {
        const r = await resolve(uri)
        const e = expected.find((x) => x.uri === uri)!
        ours.push({
          uri,
          ...('name' in e ? { name: r.name, version: r.version } : {}),
          ...('modelId' in e ? { modelId: r.modelId } : {}),
          artifactUri: r.artifactUri,
        })
      }
      expect(ours).toEqual(expected)
    },
    SLOW,
  )
})

describe('what does not exist, listing what does', () => {
  test.each([
    [
      () => `models:/no-such-model-xyz/1`,
      /no registered model named "no-such-model-xyz" on MLflow at http:\S+; models there: .*"wine-classifier"/,
    ],
    [() => `models:/${MODEL()}/99`, /model "wine-classifier" has no version 99; its versions: 1, 2/],
    [() => `models:/${MODEL()}@nope`, /model "wine-classifier" has no alias "nope"; its aliases: .*champion → v1/],
    [
      () => `models:/${MODEL()}/Prod`,
      /"Prod" is not a version number, a stage \(None, Staging, Production, Archived\) or "latest"; an alias is written models:\/wine-classifier@<alias> \(its aliases: .*champion → v1.*\)/,
    ],
    [
      () => `models:/${MODEL()}/archived`,
      () =>
        new RegExp(
          `no version of model "wine-classifier" is in stage Archived; stages in use: Production \\(v${rigEnv('FIXTURE_PRODUCTION_VERSION')}\\), Staging \\(v${rigEnv('FIXTURE_STAGING_VERSION')}\\)$`,
        ),
    ],
    [() => `models:/no-such-model-xyz@champion`, /no registered model named "no-such-model-xyz"/],
    [() => `models:/no-such-model-xyz/latest`, /no registered model named "no-such-model-xyz"/],
    [
      () => `models:/m-00000000000000000000000000000000`,
      /no logged model with id "m-00000000000000000000000000000000"/,
    ],
    [
      () => `runs:/0123456789abcdef0123456789abcdef/model`,
      /run 0123456789abcdef0123456789abcdef does not exist on MLflow at/,
    ],
    [
      () => `runs:/${rigEnv('FIXTURE_RUN_ID')}/nothing-here`,
      /has no artifacts at "nothing-here" and no logged model named "nothing-here"; its artifacts: model/,
    ],
  ])(
    'case %#',
    async (uri, expected) => {
      const err = await resolve(uri()).catch((e) => e)
      expect(err).toBeInstanceOf(Error)
      expect(err.message).toMatch(typeof expected === 'function' ? expected() : expected)
      expect(err.message).not.toContain('\n')
    },
    SLOW,
  )
})

describe('a missing stage lists every version of every stage', () => {
  // A model of our own (the shared fixture has one version per stage): two versions in
  // Production, one in Staging, registered from wine-classifier v1's files by MLflow's client.
  const name = `it-stages-${Date.now().toString(36)}`
  beforeAll(async () => {
    await python(
      `
import json, os, mlflow
from mlflow import MlflowClient
c = MlflowClient()
src = c.get_model_version(os.environ["FIXTURE"], "1").source
for stage in ("Production", "Production", "Staging"):
    v = mlflow.register_model(src, os.environ["NAME"])
    c.transition_model_version_stage(os.environ["NAME"], v.version, stage, archive_existing_versions=False)
print(json.dumps("ok"))
`,
      { MLFLOW_TRACKING_URI: serverUri('plain'), NAME: name, FIXTURE: MODEL() },
    )
  }, SLOW)
  afterAll(() => deleteRegisteredModel(name))

  test(
    'models:/<name>/Archived: Production (v1, v2), Staging (v3)',
    async () => {
      const err = await resolve(`models:/${name}/Archived`).catch((e: Error) => e)
      expect((err as Error).message).toBe(
        `models:/${name}/Archived: no version of model "${name}" is in stage Archived; stages in use: Production (v1, v2), Staging (v3)`,
      )
      // The stage that does exist still resolves to its newest version.
      expect((await resolve(`models:/${name}/Production`)).version).toBe('2')
    },
    SLOW,
  )
})

describe('server faults', () => {
  test(
    'unreachable port names tracking-uri',
    async () => {
      const x = build(inputs('plain', { trackingUri: 'http://127.0.0.1:1' }))
      await expect(x.mlflow.resolve(ref('models:/m/1'))).rejects.toThrow(
        'cannot reach MLflow at http://127.0.0.1:1: connection refused (is the server up, is the port right?); check tracking-uri',
      )
      await x.close()
    },
    SLOW,
  )

  test(
    'https:// against the plain-HTTP server says to use http://',
    async () => {
      const uri = serverUri('plain').replace('http:', 'https:')
      const x = build(inputs('plain', { trackingUri: uri }))
      await expect(x.mlflow.resolve(ref(`models:/${MODEL()}/1`))).rejects.toThrow(
        `MLflow at ${uri} does not speak TLS (it answered plain HTTP to an https:// URL): use http:// in tracking-uri`,
      )
      await x.close()
    },
    SLOW,
  )

  test(
    'a tracking URI that is not MLflow (the IdP) is recognised as such',
    async () => {
      const x = build(inputs('plain', { trackingUri: rigEnv('OIDC_ISSUER') }))
      const err = await x.mlflow.resolve(ref(`models:/${MODEL()}/1`)).catch((e) => e)
      expect(err.message).toMatch(/answered HTTP 404 .*is tracking-uri the MLflow server/)
      await x.close()
    },
    SLOW,
  )
})
