// The serving image's identity: everything that decides what the image contains, known before
// downloading the model. Same identity → the image in the registry is the one we would build, so
// reuse it; a different identity → a new tag, hence a new digest and a new revision.
// Pure: no I/O here.
import { createHash } from 'node:crypto'
import { DeployError } from '../util/errors.js'
import type { Attestations } from './buildx.js'

/**
 * Bump when the generated Dockerfile or the build recipe changes what the image does, so images
 * made by an older generator are rebuilt. A change of build speed or size alone keeps them: they
 * serve the same.
 */
export const TEMPLATE_VERSION = '2'
/** Bump when the identity document's shape changes. */
export const IDENTITY_SCHEMA = 1

/** When to build: on a cache miss (auto), every time (always), or never (fail on a miss). */
export type BuildPolicy = 'auto' | 'always' | 'never'
/** The V2 server in the image: KServe's Python model server (default) or MLServer (end-of-life). */
export type Runtime = 'kserve' | 'mlserver'

export const LABEL_PREFIX = 'mlflow-k8s-deploy'
export const IDENTITY_LABEL = `${LABEL_PREFIX}.identity`

export interface ModelFileEntry {
  readonly path: string
  readonly size: number
}

/** What the MLflow registry tells us about the model without downloading it. */
export interface ModelFacts {
  /** Registered model name; undefined for a runs:/ URI. */
  readonly name: string | undefined
  readonly version: string | undefined
  readonly runId: string | undefined
  /** Every file of the model directory, relative to it, with its size in bytes. */
  readonly artifacts: readonly ModelFileEntry[]
  /** sha256 (hex) of the MLmodel file's bytes. */
  readonly mlmodelSha256: string
  /** The pip requirements the image installs (requirements.txt, or the pip part of conda.yaml). */
  readonly requirements: string
}

export interface IdentityInput {
  readonly model: ModelFacts
  /** The base image as given, and the digest it resolved to in its registry. */
  readonly base: { readonly ref: string; readonly digest: string }
  readonly runtime: { readonly name: string; readonly version: string }
  /** This action's version (package.json) and the Dockerfile template version. */
  readonly generator: { readonly version: string; readonly template: string }
  /**
   * Build settings that change what is pushed: target platforms, the user's build args, and the
   * attestations asked for (an image without an SBOM is not reused once `sbom` is on).
   */
  readonly build: {
    readonly platforms: readonly string[]
    readonly args: Readonly<Record<string, string>>
    readonly attestations?: Attestations
  }
}

export interface ImageIdentity {
  /** The canonical JSON document hashed, for logs and debugging. */
  readonly document: string
  /** sha256 hex of `document`. */
  readonly digest: string
  readonly input: IdentityInput
}

/** Requirements as installed: LF line ends, no comments, blanks or trailing spaces; order kept. */
export function normalizeRequirements(text: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter((l) => l.length > 0)
  return lines.length ? lines.join('\n') + '\n' : ''
}

/** JSON with object keys sorted at every level and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

export function computeIdentity(input: IdentityInput): ImageIdentity {
  const { model } = input
  const doc = {
    schema: IDENTITY_SCHEMA,
    model: {
      name: model.name ?? null,
      version: model.version ?? null,
      runId: model.runId ?? null,
      mlmodelSha256: model.mlmodelSha256,
      artifacts: [...model.artifacts]
        .map((a) => ({ path: a.path, size: a.size }))
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    },
    requirements: normalizeRequirements(model.requirements),
    base: { ref: input.base.ref, digest: input.base.digest },
    runtime: input.runtime,
    generator: input.generator,
    // canonicalJson drops an undefined member: without attestations, the document (and every
    // identity computed before these settings existed) is unchanged.
    build: {
      platforms: [...input.build.platforms].sort(),
      args: input.build.args,
      attestations: attestationIdentity(input.build.attestations),
    },
  }
  const document = canonicalJson(doc)
  return { document, digest: sha256Hex(document), input }
}

/** Only the attestations asked for: none asked, none in the document. */
function attestationIdentity(a: Attestations | undefined): Attestations | undefined {
  return a?.sbom || a?.provenance ? { sbom: a.sbom, provenance: a.provenance } : undefined
}

/**
 * The default tag: `v<version>-` (or `run-` for a run's model) and 20 hex digits of the identity.
 * The version keeps tags readable in a registry UI; 80 bits of hash keep collisions out of reach
 * (about 2^40 tags in one repository before one becomes likely) while the tag stays short.
 */
export function defaultTag(identity: ImageIdentity): string {
  const version = identity.input.model.version
  const prefix = version && /^[A-Za-z0-9_.-]{1,40}$/.test(version) ? `v${version}` : 'run'
  return `${prefix}-${identity.digest.slice(0, 20)}`
}

export interface LabelExtras {
  /** The source repository URL (e.g. the GitHub repository that ran the deploy). */
  readonly source?: string
  /** The source revision (git sha). Not part of the identity: it does not change the image. */
  readonly revision?: string
}

/** Config labels that carry the identity (checked on reuse) and describe the image. */
export function identityLabels(identity: ImageIdentity, extras: LabelExtras = {}): Record<string, string> {
  const { model, base, runtime, generator } = identity.input
  const title = model.name ?? 'mlflow-model'
  const labels: Record<string, string> = {
    'org.opencontainers.image.title': title,
    'org.opencontainers.image.description': model.version
      ? `MLflow model ${title} version ${model.version}, served by ${runtime.name} ${runtime.version} (V2 inference protocol)`
      : `MLflow model of run ${model.runId ?? 'unknown'}, served by ${runtime.name} ${runtime.version} (V2 inference protocol)`,
    'org.opencontainers.image.base.name': base.ref,
    'org.opencontainers.image.base.digest': base.digest,
    [IDENTITY_LABEL]: identity.digest,
    [`${LABEL_PREFIX}.identity-schema`]: String(IDENTITY_SCHEMA),
    [`${LABEL_PREFIX}.model.mlmodel-sha256`]: model.mlmodelSha256,
    [`${LABEL_PREFIX}.model.requirements-sha256`]: sha256Hex(normalizeRequirements(model.requirements)),
    [`${LABEL_PREFIX}.runtime`]: `${runtime.name} ${runtime.version}`,
    [`${LABEL_PREFIX}.generator`]: `${generator.version} template ${generator.template}`,
  }
  if (model.name) labels[`${LABEL_PREFIX}.model.name`] = model.name
  if (model.version) {
    labels[`${LABEL_PREFIX}.model.version`] = model.version
    labels['org.opencontainers.image.version'] = model.version
  }
  if (model.runId) labels[`${LABEL_PREFIX}.model.run-id`] = model.runId
  if (extras.source) labels['org.opencontainers.image.source'] = extras.source
  if (extras.revision) labels['org.opencontainers.image.revision'] = extras.revision
  return labels
}

// Platforms as `os/arch[/variant]`. An arm64 image without a variant is v8 and an arm one v7, as
// containerd normalizes them (https://github.com/containerd/platforms), so linux/arm64 asked for
// matches an index entry linux/arm64/v8 and the other way round.
const DEFAULT_VARIANT: Readonly<Record<string, string>> = { arm64: 'v8', arm: 'v7' }

/** `os/arch/variant` with the architecture's default variant filled in. */
export function normalizePlatform(platform: string): string {
  const [os = '', arch = '', variant] = platform.trim().toLowerCase().split('/')
  const v = variant || DEFAULT_VARIANT[arch]
  return v ? `${os}/${arch}/${v}` : `${os}/${arch}`
}

/** The requested platforms that `available` (an index's images, a builder's list) lacks, as requested. */
export function missingPlatforms(requested: readonly string[], available: readonly string[]): string[] {
  const have = new Set(available.map(normalizePlatform))
  return requested.filter((p) => !have.has(normalizePlatform(p)))
}

/** What the registry holds under the tag we would use. */
export type RemoteTag =
  | { readonly exists: false }
  | {
      readonly exists: true
      readonly digest: string
      readonly labels: Readonly<Record<string, string>>
      /** The images' platforms (an index's entries, or a single image's config); absent: not read. */
      readonly platforms?: readonly string[]
    }

export interface CacheRuleInput {
  readonly policy: BuildPolicy
  readonly identity: string
  /** e.g. 127.0.0.1:5001/wine:v2-…, for messages. */
  readonly ref: string
  /** Whether the tag came from the user (`image-tag`) rather than from the identity. */
  readonly userTag: boolean
  readonly remote: RemoteTag
  /** The platforms input: a hit must hold an image for each (empty: the builder's own, not checked). */
  readonly platforms?: readonly string[]
}

export type CacheDecision =
  | { readonly kind: 'hit'; readonly digest: string; readonly reason: string }
  | { readonly kind: 'build'; readonly reason: string; readonly warning?: string }

/**
 * Reuse only when the tag exists AND its labels carry the same identity: a tag alone proves
 * nothing (tags move, and `latest` is everyone's). `build: never` turns every would-be build into
 * an error; `build: always` builds even on a hit.
 */
export function decideCache(input: CacheRuleInput): CacheDecision {
  const { remote, ref, identity } = input
  const found = remote.exists ? remote.labels[IDENTITY_LABEL] : undefined
  const short = (d: string | undefined) => (d ? d.slice(0, 12) : 'none')

  // The platforms are in the identity, so a tag with this identity and a platform missing was not
  // pushed by this action as a whole (a tag moved by hand, a copy of one platform): rebuild it.
  const missing =
    remote.exists && remote.platforms && input.platforms?.length
      ? missingPlatforms(input.platforms, remote.platforms)
      : []

  let decision: CacheDecision
  if (remote.exists && found === identity && missing.length) {
    const has = remote.platforms?.length ? remote.platforms.join(', ') : 'no platform'
    decision = {
      kind: 'build',
      reason: `${ref} carries this model's identity but holds no ${missing.join(', ')} image (only ${has})`,
      warning: `${ref} lacks ${missing.join(', ')} although its labels name this model; rebuilding it for ${input.platforms!.join(', ')}`,
    }
  } else if (remote.exists && found === identity) {
    decision = {
      kind: 'hit',
      digest: remote.digest,
      reason: `${ref} already holds this model (identity ${short(identity)})`,
    }
  } else if (!remote.exists) {
    decision = { kind: 'build', reason: `${ref} does not exist yet` }
  } else {
    const what = found ? `the image of another model (identity ${short(found)})` : 'an image without our identity label'
    decision = {
      kind: 'build',
      reason: `${ref} holds ${what}, not this one (identity ${short(identity)})`,
      warning: input.userTag
        ? `image-tag "${ref.slice(ref.lastIndexOf(':') + 1)}" already points at ${what}; rebuilding and moving the tag. ` +
          'Mutable tags are risky (anyone pulling the tag gets whichever image was pushed last): leave image-tag empty to get a tag derived from the model'
        : `${ref} was overwritten by something else; rebuilding it`,
    }
  }

  if (input.policy === 'always') {
    return {
      kind: 'build',
      reason: `build: always (${decision.reason})`,
      ...(decision.kind === 'build' && decision.warning ? { warning: decision.warning } : {}),
    }
  }
  if (input.policy === 'never' && decision.kind === 'build') {
    throw new DeployError(
      `build: never, but the image must be built: ${decision.reason}. Build it once with build: auto, or point image-repository/image-tag at an image made by this action for this model`,
    )
  }
  return decision
}
