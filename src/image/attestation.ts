// The model attestation: an in-toto statement (https://github.com/in-toto/attestation) about a
// serving image's digest that says which MLflow model it serves (tracking server, name, version,
// run, the digest of its artifact listing, the URI as given) and which workflow run built or
// reused it. cosign signs it and stores it beside the image (`cosign attest`); verify-signature
// checks it before the apply, so a cluster's admission policy and this action both know what an
// image serves from the registry alone. Pure: building and checking the predicate, no I/O.
import { redact } from '../util/http.js'
import { canonicalJson, sha256Hex, type ModelFacts } from './identity.js'

/** The predicate type: versioned, bumped when the predicate's meaning changes. */
export const MODEL_ATTESTATION_TYPE = 'https://github.com/org/mlflow-k8s-deploy/attestations/model/v1'

export interface ModelAttestation {
  readonly model: {
    /** The model URI as the workflow gave it (models:/wine@champion). */
    readonly uri: string
    /** The tracking server's URL, without credentials. */
    readonly trackingServer: string
    readonly name: string | null
    readonly version: string | null
    readonly runId: string | null
    /** Where MLflow keeps the model's artifacts. */
    readonly artifactUri: string
    /** sha256 of the artifact listing (every file's path and size, sorted): see listingDigest. */
    readonly listingDigest: string
    readonly mlmodelSha256: string
  }
  readonly image: {
    /** The identity the image's tag and labels carry (src/image/identity.ts). */
    readonly identity: string
    readonly runtime: string
    readonly base: { readonly ref: string; readonly digest: string }
  }
  /** The workflow run that signed it; absent outside GitHub Actions. */
  readonly run?: {
    readonly repository?: string
    /** GITHUB_WORKFLOW_REF: owner/repo/.github/workflows/file.yml@ref. */
    readonly workflow?: string
    readonly runId?: string
    readonly runAttempt?: string
    readonly sha?: string
    readonly ref?: string
    readonly url?: string
  }
  readonly generator: { readonly name: string; readonly version: string }
}

export interface ModelAttestationInput {
  readonly modelUri: string
  readonly trackingServer: string
  readonly artifactUri: string
  readonly model: ModelFacts
  readonly identity: string
  readonly runtime: { readonly name: string; readonly version: string }
  readonly base: { readonly ref: string; readonly digest: string }
  readonly run?: ModelAttestation['run']
  readonly generatorVersion: string
}

/**
 * `sha256:` of the model's artifact listing: each file's path and size, sorted by path, as
 * canonical JSON. Not a hash of the bytes (the plan never downloads them), but what the image's
 * identity hashes too, and what anyone can recompute from MLflow's artifact API.
 */
export function listingDigest(artifacts: ModelFacts['artifacts']): string {
  const listing = [...artifacts]
    .map((a) => ({ path: a.path, size: a.size }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return `sha256:${sha256Hex(canonicalJson(listing))}`
}

/** A URL without user:password@ or query (a tracking URI may carry credentials) or trailing slash. */
export function publicUrl(url: string): string {
  return redact(url).replace(/\/+$/, '')
}

export function modelAttestation(input: ModelAttestationInput): ModelAttestation {
  const { model } = input
  const run = input.run && Object.values(input.run).some(Boolean) ? dropEmpty(input.run) : undefined
  return {
    model: {
      uri: input.modelUri,
      trackingServer: publicUrl(input.trackingServer),
      name: model.name ?? null,
      version: model.version ?? null,
      runId: model.runId ?? null,
      artifactUri: publicUrl(input.artifactUri),
      listingDigest: listingDigest(model.artifacts),
      mlmodelSha256: model.mlmodelSha256,
    },
    image: {
      identity: input.identity,
      runtime: `${input.runtime.name} ${input.runtime.version}`,
      base: { ref: input.base.ref, digest: input.base.digest },
    },
    ...(run ? { run } : {}),
    generator: { name: 'mlflow-k8s-deploy', version: input.generatorVersion },
  }
}

/** The model the deploy is about, as the attestation must name it. */
export interface ExpectedModel {
  readonly name: string | undefined
  readonly version: string | undefined
  readonly runId: string | undefined
  readonly listingDigest: string
}

export type AttestationCheck =
  | { readonly kind: 'match'; readonly attestation: ModelAttestation }
  | { readonly kind: 'none' }
  | { readonly kind: 'other-model'; readonly attested: string; readonly wanted: string; readonly differ: string[] }

/**
 * Of the verified predicates (cosign has checked their signatures), one must name exactly the
 * model being deployed: same name, version and run, and the same artifact listing. Any other is
 * an image made for another model, or a model whose files changed since.
 */
export function checkModelAttestation(predicates: readonly unknown[], expected: ExpectedModel): AttestationCheck {
  const found = predicates.filter(isModelAttestation)
  if (!found.length) return { kind: 'none' }
  const match = found.find((a) => mismatches(a, expected).length === 0)
  if (match) return { kind: 'match', attestation: match }
  const first = found[0]!
  return {
    kind: 'other-model',
    attested: describeModel(first.model),
    wanted: describeModel({
      name: expected.name ?? null,
      version: expected.version ?? null,
      runId: expected.runId ?? null,
    }),
    differ: mismatches(first, expected),
  }
}

function mismatches(a: ModelAttestation, e: ExpectedModel): string[] {
  const out: string[] = []
  if (a.model.name !== (e.name ?? null)) out.push('name')
  if (a.model.version !== (e.version ?? null)) out.push('version')
  if (a.model.runId !== (e.runId ?? null)) out.push('run')
  if (a.model.listingDigest !== e.listingDigest) out.push('artifact listing')
  return out
}

export function describeModel(m: Pick<ModelAttestation['model'], 'name' | 'version' | 'runId'>): string {
  const what = m.name ? `${m.name} v${m.version ?? '?'}` : 'a model'
  return m.runId ? `${what} (run ${m.runId})` : what
}

function isModelAttestation(p: unknown): p is ModelAttestation {
  if (typeof p !== 'object' || p === null) return false
  const model = (p as { model?: unknown }).model
  return (
    typeof model === 'object' &&
    model !== null &&
    typeof (model as { listingDigest?: unknown }).listingDigest === 'string' &&
    'version' in model &&
    'name' in model
  )
}

function dropEmpty<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as T
}
