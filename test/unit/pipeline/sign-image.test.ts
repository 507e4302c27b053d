import { parseInputs, type Inputs } from '../../../src/inputs.js'
import type { Cosign, Signer, Verifier } from '../../../src/image/signing.js'
import type { Services, StageContext } from '../../../src/pipeline/context.js'
import { listingDigest, modelAttestation, MODEL_ATTESTATION_TYPE } from '../../../src/image/attestation.js'
import { modelFacts, type ImagePlan } from '../../../src/image/index.js'
import type { ModelDetails } from '../../../src/mlflow/index.js'
import { attestModel, checkCosign, signImage, verifySignature } from '../../../src/pipeline/sign-image.js'
import { Report } from '../../../src/report/report.js'
import { MemoryLogger } from '../../support/memory-logger.js'

const DIGEST = `sha256:${'c'.repeat(64)}`
const IMAGE = { ref: `r.io/w@${DIGEST}`, digest: DIGEST }
const base = parseInputs({
  get: (n) => ({ 'model-uri': 'models:/w/1', 'tracking-uri': 'http://mlflow', 'image-repository': 'r.io/w' })[n] ?? '',
  env: {},
  mask: () => {},
})

const DETAILS = {
  model: { name: 'w', version: '1', runId: 'r1', artifactUri: 's3://b/1/r1/artifacts/model' },
  files: [{ path: 'MLmodel', size: 12 }],
  smallFiles: { MLmodel: Buffer.from('flavors: {}\n') },
} as unknown as ModelDetails
const FACTS = modelFacts(DETAILS)
const BASE = { ref: 'r.io/kserve-base:0.16.0', digest: `sha256:${'b'.repeat(64)}` }
const PLAN = {
  identity: {
    digest: 'i'.repeat(64),
    input: { model: FACTS, base: BASE, runtime: { name: 'kserve', version: '0.16.0' } },
  },
} as unknown as ImagePlan
/** What attestModel attaches for DETAILS and PLAN. */
const ATTESTATION = modelAttestation({
  modelUri: 'models:/w/1',
  trackingServer: 'http://mlflow',
  artifactUri: DETAILS.model.artifactUri,
  model: FACTS,
  identity: PLAN.identity.digest,
  runtime: { name: 'kserve', version: '0.16.0' },
  base: BASE,
  generatorVersion: '0',
})

function context(signing: Inputs['signing'], predicates: unknown[] = [ATTESTATION]) {
  const calls: string[] = []
  const attested: unknown[] = []
  const cosign = {
    version: async () => (calls.push('version'), 'v2.6.5'),
    sign: async (image: string, s: Signer) => void calls.push(`sign ${image} ${s.kind}`),
    verify: async (image: string, v: Verifier) => void calls.push(`verify ${image} ${v.kind}`),
    attest: async (image: string, s: Signer, type: string, predicate: unknown) => {
      calls.push(`attest ${image} ${s.kind} ${type}`)
      attested.push(predicate)
    },
    verifiedPredicates: async (image: string, v: Verifier, type: string) => {
      calls.push(`verify-attestation ${image} ${v.kind} ${type}`)
      return predicates
    },
  } as unknown as Cosign
  const ctx: StageContext = {
    inputs: { ...base, signing },
    services: {
      cosign: () => cosign,
      mlflow: () => ({ client: { trackingUri: 'http://mlflow' } }),
      run: {
        repository: 'acme/models',
        workflowRef: 'acme/models/.github/workflows/d.yml@refs/heads/main',
        runId: '7',
      },
    } as unknown as Services,
    log: new MemoryLogger(),
    signal: new AbortController().signal,
    report: new Report(),
    state: {},
  }
  return { ctx, calls, attested }
}
const MODEL = { details: DETAILS, modelUri: 'models:/w/1', plan: PLAN }

const KEY: Signer = { kind: 'key', key: { path: '/k' }, password: undefined }
const PUB: Verifier = { kind: 'key', key: { path: '/k.pub' } }

test('without sign or verify-signature, the four stages are skipped and cosign is never run', async () => {
  const { ctx, calls } = context({ sign: undefined, verify: undefined })
  expect(await checkCosign(ctx, {})).toMatchObject({ skipped: true })
  expect(await signImage(ctx, { image: IMAGE })).toMatchObject({ skipped: true })
  expect(await attestModel(ctx, { image: IMAGE, ...MODEL })).toMatchObject({ skipped: true })
  expect(await verifySignature(ctx, { image: IMAGE, details: DETAILS })).toMatchObject({ skipped: true })
  expect(calls).toEqual([])
})

test('with both: cosign checked, the image signed, its model attested, both verified by digest', async () => {
  const { ctx, calls, attested } = context({ sign: KEY, verify: PUB })
  expect((await checkCosign(ctx, {})).decision).toBe('cosign v2.6.5 found')
  expect((await signImage(ctx, { image: IMAGE })).decision).toBe(`signed ${IMAGE.ref} with signing-key`)
  expect((await attestModel(ctx, { image: IMAGE, ...MODEL })).decision).toBe(
    `attested that ${IMAGE.ref} serves w v1 (run r1)`,
  )
  expect((await verifySignature(ctx, { image: IMAGE, details: DETAILS })).decision).toBe(
    `the signature of ${IMAGE.ref} verified (public key); its model attestation names w v1 (run r1)`,
  )
  expect(calls).toEqual([
    'version',
    `sign ${IMAGE.ref} key`,
    `attest ${IMAGE.ref} key ${MODEL_ATTESTATION_TYPE}`,
    `verify ${IMAGE.ref} key`,
    `verify-attestation ${IMAGE.ref} key ${MODEL_ATTESTATION_TYPE}`,
  ])
  expect(attested).toEqual([
    expect.objectContaining({
      model: expect.objectContaining({
        uri: 'models:/w/1',
        name: 'w',
        version: '1',
        runId: 'r1',
        listingDigest: listingDigest(FACTS.artifacts),
      }),
      run: { repository: 'acme/models', workflow: 'acme/models/.github/workflows/d.yml@refs/heads/main', runId: '7' },
    }),
  ])
})

test('an image without a model attestation is refused, naming the fix', async () => {
  const { ctx } = context({ sign: undefined, verify: PUB }, [])
  await expect(verifySignature(ctx, { image: IMAGE, details: DETAILS })).rejects.toThrow(
    `${IMAGE.ref} carries no model attestation signed as verify-signature wants (a signature by the public key /k.pub): deploy images that this action built or reused with sign: true, which attests the model each serves`,
  )
})

test('an image attested for another version of the model is refused, naming both', async () => {
  const other = { ...ATTESTATION, model: { ...ATTESTATION.model, version: '2', runId: 'r2' } }
  const { ctx } = context({ sign: undefined, verify: PUB }, [other])
  await expect(verifySignature(ctx, { image: IMAGE, details: DETAILS })).rejects.toThrow(
    `the model attestation of ${IMAGE.ref} names w v2 (run r2), not w v1 (run r1), which is being deployed (version, run differ): the image serves another model`,
  )
})

test('an image known by tag is signed by its digest', async () => {
  const { ctx, calls } = context({ sign: { kind: 'keyless' }, verify: undefined })
  await signImage(ctx, { image: { ref: 'r.io/w:v1', digest: DIGEST } })
  expect(calls).toEqual([`sign r.io/w:v1@${DIGEST} keyless`])
})
