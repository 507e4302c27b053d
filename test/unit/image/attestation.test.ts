import {
  checkModelAttestation,
  listingDigest,
  modelAttestation,
  publicUrl,
  type ModelAttestationInput,
} from '../../../src/image/attestation.js'
import type { ModelFacts } from '../../../src/image/identity.js'

const MODEL: ModelFacts = {
  name: 'wine',
  version: '4',
  runId: 'r4',
  artifacts: [
    { path: 'model.pkl', size: 1000 },
    { path: 'MLmodel', size: 200 },
  ],
  mlmodelSha256: 'm'.repeat(64),
  requirements: 'scikit-learn==1.7.2\n',
}

const INPUT: ModelAttestationInput = {
  modelUri: 'models:/wine@champion',
  trackingServer: 'https://user:secret@mlflow.acme.io/?token=x',
  artifactUri: 's3://bucket/1/r4/artifacts/model',
  model: MODEL,
  identity: 'i'.repeat(64),
  runtime: { name: 'kserve', version: '0.16.0' },
  base: { ref: 'python:3.11-slim', digest: `sha256:${'b'.repeat(64)}` },
  run: {
    repository: 'acme/models',
    workflow: 'acme/models/.github/workflows/deploy.yml@refs/heads/main',
    runId: '42',
    sha: 'abc',
  },
  generatorVersion: '1.2.3',
}

test('the listing digest is independent of the listing order and changes with any path or size', () => {
  const d = listingDigest(MODEL.artifacts)
  expect(d).toMatch(/^sha256:[0-9a-f]{64}$/)
  expect(listingDigest([...MODEL.artifacts].reverse())).toBe(d)
  expect(listingDigest([{ path: 'model.pkl', size: 1001 }, MODEL.artifacts[1]!])).not.toBe(d)
  expect(listingDigest([{ path: 'model2.pkl', size: 1000 }, MODEL.artifacts[1]!])).not.toBe(d)
})

test.each([
  ['credentials and query dropped', 'https://u:p@mlflow.io/x/?token=t', 'https://mlflow.io/x'],
  ['a plain URL kept', 'http://127.0.0.1:5000', 'http://127.0.0.1:5000'],
  ['a non-URL left alone', 'databricks', 'databricks'],
])('publicUrl: %s', (_, url, expected) => {
  expect(publicUrl(url)).toBe(expected)
})

test('the predicate names the model as given and resolved, the image and the run; no credentials', () => {
  const a = modelAttestation(INPUT)
  expect(a).toEqual({
    model: {
      uri: 'models:/wine@champion',
      trackingServer: 'https://mlflow.acme.io',
      name: 'wine',
      version: '4',
      runId: 'r4',
      artifactUri: 's3://bucket/1/r4/artifacts/model',
      listingDigest: listingDigest(MODEL.artifacts),
      mlmodelSha256: MODEL.mlmodelSha256,
    },
    image: { identity: INPUT.identity, runtime: 'kserve 0.16.0', base: INPUT.base },
    run: INPUT.run,
    generator: { name: 'mlflow-k8s-deploy', version: '1.2.3' },
  })
  expect(JSON.stringify(a)).not.toContain('secret')
})

test('outside GitHub Actions there is no run; a runs:/ model has no name or version', () => {
  const a = modelAttestation({
    ...INPUT,
    modelUri: 'runs:/r4/model',
    model: { ...MODEL, name: undefined, version: undefined },
    run: { repository: undefined, sha: '' },
  })
  expect(a.run).toBeUndefined()
  expect(a.model).toMatchObject({ uri: 'runs:/r4/model', name: null, version: null, runId: 'r4' })
})

const WANTED = { name: 'wine', version: '4', runId: 'r4', listingDigest: listingDigest(MODEL.artifacts) }
const att = (model: Partial<ReturnType<typeof modelAttestation>['model']>) => {
  const a = modelAttestation(INPUT)
  return { ...a, model: { ...a.model, ...model } }
}

test.each([
  ['the one for this model', [att({})], 'match', []],
  ['one of several, in any order', [att({ version: '3', runId: 'r3' }), att({})], 'match', []],
  ['nothing', [], 'none', []],
  ['predicates of another shape only', [{ builder: 'x' }, null, 'text'], 'none', []],
  ['another version', [att({ version: '3', runId: 'r3' })], 'other-model', ['version', 'run']],
  ['another model', [att({ name: 'beer' })], 'other-model', ['name']],
  [
    'the same version whose files changed',
    [att({ listingDigest: `sha256:${'0'.repeat(64)}` })],
    'other-model',
    ['artifact listing'],
  ],
])('checkModelAttestation: %s', (_, predicates, kind, differ) => {
  const check = checkModelAttestation(predicates, WANTED)
  expect(check.kind).toBe(kind)
  if (check.kind === 'other-model') expect(check.differ).toEqual(differ)
})

test('the mismatch names both models', () => {
  expect(checkModelAttestation([att({ version: '3', runId: 'r3' })], WANTED)).toEqual({
    kind: 'other-model',
    attested: 'wine v3 (run r3)',
    wanted: 'wine v4 (run r4)',
    differ: ['version', 'run'],
  })
})
