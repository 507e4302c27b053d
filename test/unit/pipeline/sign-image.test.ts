import { parseInputs, type Inputs } from '../../../src/inputs.js'
import type { Cosign, Signer, Verifier } from '../../../src/image/signing.js'
import type { Services, StageContext } from '../../../src/pipeline/context.js'
import { checkCosign, signImage, verifySignature } from '../../../src/pipeline/sign-image.js'
import { Report } from '../../../src/report/report.js'
import { MemoryLogger } from '../../support/memory-logger.js'

const DIGEST = `sha256:${'c'.repeat(64)}`
const IMAGE = { ref: `r.io/w@${DIGEST}`, digest: DIGEST }
const base = parseInputs({
  get: (n) => ({ 'model-uri': 'models:/w/1', 'tracking-uri': 'http://mlflow', 'image-repository': 'r.io/w' })[n] ?? '',
  env: {},
  mask: () => {},
})

function context(signing: Inputs['signing']) {
  const calls: string[] = []
  const cosign = {
    version: async () => (calls.push('version'), 'v2.6.5'),
    sign: async (image: string, s: Signer) => void calls.push(`sign ${image} ${s.kind}`),
    verify: async (image: string, v: Verifier) => void calls.push(`verify ${image} ${v.kind}`),
  } as unknown as Cosign
  const ctx: StageContext = {
    inputs: { ...base, signing },
    services: { cosign: () => cosign } as unknown as Services,
    log: new MemoryLogger(),
    signal: new AbortController().signal,
    report: new Report(),
    state: {},
  }
  return { ctx, calls }
}

const KEY: Signer = { kind: 'key', key: { path: '/k' }, password: undefined }
const PUB: Verifier = { kind: 'key', key: { path: '/k.pub' } }

test('without sign or verify-signature, the three stages are skipped and cosign is never run', async () => {
  const { ctx, calls } = context({ sign: undefined, verify: undefined })
  expect(await checkCosign(ctx, {})).toMatchObject({ skipped: true })
  expect(await signImage(ctx, { image: IMAGE })).toMatchObject({ skipped: true })
  expect(await verifySignature(ctx, { image: IMAGE })).toMatchObject({ skipped: true })
  expect(calls).toEqual([])
})

test('with both: cosign checked, the image signed and verified by digest', async () => {
  const { ctx, calls } = context({ sign: KEY, verify: PUB })
  expect((await checkCosign(ctx, {})).decision).toBe('cosign v2.6.5 found')
  expect((await signImage(ctx, { image: IMAGE })).decision).toBe(`signed ${IMAGE.ref} with signing-key`)
  expect((await verifySignature(ctx, { image: IMAGE })).decision).toBe(
    `the signature of ${IMAGE.ref} verified (public key)`,
  )
  expect(calls).toEqual(['version', `sign ${IMAGE.ref} key`, `verify ${IMAGE.ref} key`])
})

test('an image known by tag is signed by its digest', async () => {
  const { ctx, calls } = context({ sign: { kind: 'keyless' }, verify: undefined })
  await signImage(ctx, { image: { ref: 'r.io/w:v1', digest: DIGEST } })
  expect(calls).toEqual([`sign r.io/w:v1@${DIGEST} keyless`])
})
