// The deploy's signature stages: cosign is found before anything is built, the image is signed
// once it is pushed (or found), and its signature is verified before anything is applied.
import type { Stage } from './context.js'
import type { PinnedImage } from './plan-image.js'

type ImageNeeds = { readonly image?: PinnedImage }

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

/** verify-signature: an image without a matching signature is refused before the apply. */
export const verifySignature: Stage<ImageNeeds> = async ({ inputs, services }, { image }) => {
  const verifier = inputs.signing.verify
  if (!verifier) return { decision: 'verify-signature is not set', skipped: true }
  if (!image) return { decision: 'no image to verify', skipped: true }
  const ref = pinned(image)
  await services.cosign().verify(ref, verifier)
  return { decision: `the signature of ${ref} verified (${verifier.kind === 'key' ? 'public key' : 'keyless'})` }
}
