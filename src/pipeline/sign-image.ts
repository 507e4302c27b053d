// The deploy's signature stages: cosign is found before anything is built, the image is signed
// once it is pushed (or found) and given a signed attestation of the model it serves, and both are
// verified before anything is applied.
import {
  checkModelAttestation,
  describeModel,
  listingDigest,
  modelAttestation,
  MODEL_ATTESTATION_TYPE,
} from '../image/attestation.js'
import { describeVerifier } from '../image/signing.js'
import { modelFacts, type ImagePlan } from '../image/index.js'
import { DeployError } from '../util/errors.js'
import { VERSION } from '../version.js'
import type { Stage, StageContext } from './context.js'
import type { PinnedImage } from './plan-image.js'
import type { ResolvedModelResult } from './resolve-model.js'

type ImageNeeds = { readonly image?: PinnedImage }
type AttestNeeds = ImageNeeds & ResolvedModelResult & { readonly plan?: ImagePlan }

/** The image as cosign takes it: repository@digest, never a tag that could move under it. */
const pinned = (image: PinnedImage) => (image.ref.includes('@') ? image.ref : `${image.ref}@${image.digest}`)

/** With sign or verify-signature, a missing cosign fails here, before a build or a push. */
export const checkCosign: Stage = async ({ inputs, services }) => {
  const { sign, verify } = inputs.signing
  if (!sign && !verify) return { decision: 'no signing or verification asked for', skipped: true }
  const version = await services.cosign().version()
  return { decision: `cosign ${version} found` }
}

/**
 * sign: true signs the image to deploy, built or reused. A reused image is signed again: with a
 * key, cosign finds its own identical signature (same key, same payload) and adds none, so a
 * cache hit costs one registry read; keyless, each run's certificate adds its own signature.
 */
export const signImage: Stage<ImageNeeds> = async ({ inputs, services }, { image }) => {
  const signer = inputs.signing.sign
  if (!signer) return { decision: 'sign is off', skipped: true }
  if (!image) return { decision: 'no image to sign', skipped: true }
  const ref = pinned(image)
  await services.cosign().sign(ref, signer)
  return { decision: `signed ${ref} ${signer.kind === 'key' ? 'with signing-key' : 'keylessly'}` }
}

/**
 * With sign: true, the image also gets a signed attestation of the model it serves and of this
 * run, replacing the one an earlier run attached: it names the run that deployed it last.
 */
export const attestModel: Stage<AttestNeeds> = async (ctx, results) => {
  const signer = ctx.inputs.signing.sign
  if (!signer) return { decision: 'sign is off', skipped: true }
  const { image, plan } = results
  if (!image || !plan) return { decision: 'no image to attest', skipped: true }
  const ref = pinned(image)
  const attestation = modelAttestation({
    modelUri: results.modelUri,
    trackingServer: ctx.services.mlflow().client.trackingUri,
    artifactUri: results.details.model.artifactUri,
    model: plan.identity.input.model,
    identity: plan.identity.digest,
    runtime: plan.identity.input.runtime,
    base: plan.identity.input.base,
    run: runOf(ctx),
    generatorVersion: VERSION,
  })
  await ctx.services.cosign().attest(ref, signer, MODEL_ATTESTATION_TYPE, attestation)
  return { decision: `attested that ${ref} serves ${describeModel(attestation.model)}` }
}

/**
 * verify-signature: an image without a matching signature, or whose signed model attestation does
 * not name the model being deployed, is refused before the apply.
 */
export const verifySignature: Stage<ImageNeeds & Pick<ResolvedModelResult, 'details'>> = async (
  { inputs, services },
  { image, details },
) => {
  const verifier = inputs.signing.verify
  if (!verifier) return { decision: 'verify-signature is not set', skipped: true }
  if (!image) return { decision: 'no image to verify', skipped: true }
  const ref = pinned(image)
  const cosign = services.cosign()
  await cosign.verify(ref, verifier)
  const facts = modelFacts(details)
  const predicates = await cosign.verifiedPredicates(ref, verifier, MODEL_ATTESTATION_TYPE)
  const check = checkModelAttestation(predicates, { ...facts, listingDigest: listingDigest(facts.artifacts) })
  if (check.kind === 'none')
    throw new DeployError(
      `${ref} carries no model attestation signed as verify-signature wants (${describeVerifier(verifier)}): deploy images that this action built or reused with sign: true, which attests the model each serves`,
    )
  if (check.kind === 'other-model')
    throw new DeployError(
      `the model attestation of ${ref} names ${check.attested}, not ${check.wanted}, which is being deployed (${check.differ.join(', ')} differ): the image serves another model`,
    )
  const how = verifier.kind === 'key' ? 'public key' : 'keyless'
  return {
    decision: `the signature of ${ref} verified (${how}); its model attestation names ${describeModel(check.attestation.model)}`,
  }
}

function runOf({ services }: StageContext) {
  const run = services.run
  return {
    repository: run.repository,
    workflow: run.workflowRef,
    runId: run.runId,
    runAttempt: run.runAttempt,
    sha: run.sha,
    ref: run.ref,
    url: run.runUrl,
  }
}
