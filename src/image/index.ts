// The image stages for the pipeline: plan (identity → tag → registry check → hit or build) and
// build (context → buildx → pushed digest). The plan reads only small registry documents; the
// model is downloaded only when the plan says build.
import { rm } from 'node:fs/promises'
import { DeployError, errorMessage } from '../util/errors.js'
import { linkTree } from '../util/fs.js'
import type { Logger } from '../util/logger.js'
import { Buildx, compressionProblem, type Attestations, type Compression } from './buildx.js'
import { createBuildContext, KSERVE_VERSION, writeBuildFiles } from './context.js'
import { DockerConfigCredentials } from './docker-config.js'
import { actionsExec, type Exec } from './exec.js'
import {
  computeIdentity,
  decideCache,
  defaultTag,
  identityLabels,
  missingPlatforms,
  sha256Hex,
  TEMPLATE_VERSION,
  type BuildPolicy,
  type ImageIdentity,
  type LabelExtras,
  type ModelFacts,
  type Runtime,
} from './identity.js'
import { isPlainObject, loadYaml } from '../util/yaml.js'
import { formatImageRef, parseImageRef, pinnedRef, repositoryName, withTag, type ImageRef } from './reference.js'
import { UndiciTransport } from '../util/http.js'
import { RegistryClient, type RegistryHttp } from './registry.js'
import { generatorName, SbomStore } from './sbom.js'

export type { ModelFacts, ModelFileEntry, BuildPolicy, Runtime } from './identity.js'
export type { Attestations, Compression } from './buildx.js'

/** What the image stages are asked for: the serving image's repository, base, runtime and build. */
export interface ImageOptions {
  readonly runtime: Runtime
  /** registry/repository, without tag or digest. */
  readonly repository: string | undefined
  /** A tag of the user's; undefined: one derived from the identity. */
  readonly tag: string | undefined
  readonly baseImage: string
  readonly build: BuildPolicy
  readonly platforms: readonly string[]
  readonly buildArgs: Readonly<Record<string, string>>
  readonly cacheFrom: readonly string[]
  readonly cacheTo: readonly string[]
  readonly network?: string
  /** The buildx builder (--builder); undefined: the current one. */
  readonly builder?: string
  /** SBOM and provenance asked of BuildKit; undefined: its defaults. */
  readonly attestations?: Attestations
  /** Layer compression for the push; undefined: gzip. Not part of the identity. */
  readonly compression?: Compression
}

export interface ImageDeps {
  readonly registry: RegistryClient
  readonly buildx: Buildx
  readonly log: Logger
}

export interface ImageDepsOptions {
  readonly log: Logger
  /** The action's environment: DOCKER_CONFIG, DOCKER_HOST, HOME, PATH for credential helpers. */
  readonly env: Readonly<Record<string, string | undefined>>
  /** Called with every secret the moment it is read (core.setSecret). */
  readonly mask: (secret: string) => void
  readonly exec?: Exec
  readonly http?: RegistryHttp
  readonly signal?: AbortSignal
}

/** The composition of the image stage's outside systems. */
export function createImageDeps(o: ImageDepsOptions): ImageDeps {
  const exec = o.exec ?? actionsExec
  const credentials = new DockerConfigCredentials({ env: o.env, exec, mask: o.mask })
  const registry = new RegistryClient({
    // The same transport as MLflow's: proxy variables, timeouts, retries of 429/5xx on these reads.
    http:
      o.http ??
      new UndiciTransport({
        env: o.env,
        onRetry: (what, attempt, delay) => o.log.debug(`${what}; retry ${attempt} in ${delay} ms`),
      }),
    credentials,
    log: o.log,
    signal: o.signal,
  })
  const dockerEnv: Record<string, string> = {}
  for (const k of [
    'DOCKER_HOST',
    'DOCKER_CONFIG',
    'DOCKER_CONTEXT',
    'DOCKER_CERT_PATH',
    'DOCKER_TLS_VERIFY',
    'BUILDX_BUILDER',
  ]) {
    const v = o.env[k]
    if (v) dockerEnv[k] = v
  }
  return { registry, buildx: new Buildx({ exec, log: o.log, env: dockerEnv }), log: o.log }
}

export interface PlanRequest {
  readonly image: ImageOptions
  readonly model: ModelFacts
  /** This action's version (package.json). */
  readonly generatorVersion: string
  readonly labelExtras?: LabelExtras
}

/** A hit names the image to deploy; a build, only the tag to push. */
export type ImagePlan =
  | (PlannedImage & {
      readonly decision: 'hit'
      /** The digest the tag holds. */
      readonly digest: string
      /** What to deploy: repository@digest. */
      readonly image: string
    })
  | (PlannedImage & { readonly decision: 'build'; readonly digest?: undefined; readonly image?: undefined })

interface PlannedImage {
  /** One line for the log and the summary. */
  readonly reason: string
  /** registry/repository[:tag] as pushed, e.g. 127.0.0.1:5001/wine:v2-0123456789abcdef0123. */
  readonly ref: string
  readonly tag: string
  readonly identity: ImageIdentity
  readonly labels: Readonly<Record<string, string>>
  /** The base image as given, and pinned by the digest the identity was computed with. */
  readonly base: { readonly ref: string; readonly digest: string; readonly pinned: string }
  readonly warning?: string
}

/** Decides whether the registry already has this model's image. Reads no model artifact. */
export async function planServingImage(deps: ImageDeps, req: PlanRequest): Promise<ImagePlan> {
  const { image, model } = req
  if (!image.repository) throw new DeployError('image-repository is needed to find or build the serving image')
  const repo = parseImageRef(image.repository)
  if (repo.tag || repo.digest)
    throw new DeployError(
      `image-repository "${image.repository}" must not carry a tag or digest: put the tag in image-tag`,
    )

  const baseRef = parseImageRef(image.baseImage)
  const baseDigest = baseRef.digest ?? (await deps.registry.headDigest(baseRef))
  if (!baseDigest)
    throw new DeployError(
      `the base image ${image.baseImage} was not found in its registry (${baseRef.registry}): check base-image`,
    )

  const identity = computeIdentity({
    model,
    base: { ref: image.baseImage, digest: baseDigest },
    runtime: runtimeIdentity(image.runtime, baseRef),
    generator: { version: req.generatorVersion, template: TEMPLATE_VERSION },
    build: { platforms: image.platforms, args: image.buildArgs, attestations: image.attestations },
  })
  const tag = image.tag ?? defaultTag(identity)
  const target = withTag(repo, tag)
  const ref = formatImageRef(target)
  deps.log.debug(`image identity ${identity.digest}: ${identity.document}`)

  const remote = await deps.registry.inspect(target, image.platforms[0])
  const decision = decideCache({
    policy: image.build,
    identity: identity.digest,
    ref,
    userTag: image.tag !== undefined,
    remote: remote
      ? { exists: true, digest: remote.digest, labels: remote.labels, platforms: remote.platforms }
      : { exists: false },
    platforms: image.platforms,
  })
  if (decision.kind === 'build' && decision.warning) deps.log.warning(decision.warning)
  // Before the model is downloaded: a base without one of the platforms would fail the build late
  // or, worse, give that platform's image the base's other-architecture binaries.
  if (decision.kind === 'build' && image.platforms.length) {
    const has = (await deps.registry.platforms({ ...baseRef, digest: baseDigest })) ?? []
    const missing = missingPlatforms(image.platforms, has)
    if (missing.length) throw new DeployError(baseLacksPlatforms(image.baseImage, missing, has))
  }
  // A credential that may not push fails now, not after a minutes-long build.
  if (decision.kind === 'build') await deps.registry.checkPushAccess(target)
  const common = {
    ref,
    tag,
    identity,
    labels: identityLabels(identity, req.labelExtras),
    base: { ref: image.baseImage, digest: baseDigest, pinned: pinnedRef(baseRef, baseDigest) },
  }
  if (decision.kind === 'hit') {
    return {
      ...common,
      decision: 'hit',
      reason: `image cache hit: ${decision.reason}; build skipped`,
      digest: decision.digest,
      image: pinnedRef(repo, decision.digest),
    }
  }
  return {
    ...common,
    decision: 'build',
    reason: `image to build: ${decision.reason}`,
    ...(decision.warning ? { warning: decision.warning } : {}),
  }
}

export interface BuildRequest {
  readonly image: ImageOptions
  readonly plan: ImagePlan
  /** The downloaded model directory (the one holding MLmodel). Linked into the build context. */
  readonly modelDir: string
  /** RUN steps' network; `host` where the daemon runs without a bridge network (this rig). */
  readonly network?: string
  /** Parent of the temporary build context (default: the OS temp dir, e.g. RUNNER_TEMP). */
  readonly workDir?: string
  /** Ignore the layer cache (benchmarks). */
  readonly noCache?: boolean
}

export interface BuiltImage {
  readonly digest: string
  /** repository@digest: what the deployment runs. */
  readonly image: string
  readonly seconds: number
}

/** Generates the context and Dockerfile, builds with buildx and pushes; returns the pushed digest. */
export async function buildServingImage(deps: ImageDeps, req: BuildRequest): Promise<BuiltImage> {
  const { plan, image } = req
  const context = await createBuildContext(req.workDir)
  try {
    // Hard links: the model's bytes stay where the download or the model cache put them.
    await linkTree(req.modelDir, context.modelDir)
    await writeBuildFiles(context, plan.identity.input.model.requirements, image.runtime)
    const model = plan.identity.input.model
    const options = {
      context: context.dir,
      dockerfile: context.dockerfile,
      tags: [plan.ref],
      platforms: image.platforms,
      // Ours last: BASE_IMAGE must be the pinned base the identity was computed with.
      buildArgs: { ...image.buildArgs, BASE_IMAGE: plan.base.pinned, MODEL_NAME: model.name ?? 'mlflow-model' },
      labels: plan.labels,
      cacheFrom: image.cacheFrom,
      cacheTo: image.cacheTo,
      network: req.network,
      builder: image.builder,
      attestations: image.attestations,
      compression: image.compression,
      noCache: req.noCache,
      baseImage: plan.base.ref,
    }
    const sbom = image.attestations?.sbom
    const result =
      // The docker driver refuses any SBOM at once: its own build says so, with nothing pushed.
      sbom && (await deps.buildx.driver(image.builder)) !== 'docker'
        ? await buildWithLayersSbom(deps, plan, options, generatorName(sbom))
        : await deps.buildx.build(options)
    const repo = parseImageRef(plan.ref)
    deps.log.info(`built and pushed ${plan.ref} (${result.digest}) in ${result.seconds.toFixed(1)} s`)
    if (image.compression === 'zstd') await checkCompression(deps, plan.ref, pinnedRef(repo, result.digest), image)
    return { digest: result.digest, image: pinnedRef(repo, result.digest), seconds: result.seconds }
  } finally {
    await rm(context.dir, { recursive: true, force: true })
  }
}

/**
 * A build with an SBOM, scanned once per set of layers (src/image/sbom.ts): built and pushed
 * without the SBOM, then given the one remembered for its layers; when there is none, built again
 * with BuildKit's scan (every layer cached by then) and that SBOM remembered. A registry that
 * cannot take the attach ends in the scan too: the SBOM is never left out.
 */
async function buildWithLayersSbom(
  deps: ImageDeps,
  plan: ImagePlan,
  options: Parameters<Buildx['build']>[0],
  generator: string,
): Promise<{ digest: string; seconds: number }> {
  const store = new SbomStore(deps.registry)
  const repo = parseImageRef(plan.ref)
  const started = performance.now()
  const seconds = () => (performance.now() - started) / 1000
  // Untagged until it has its SBOM: the tag, which the cache rule reuses, never holds an image without one.
  const plain = await deps.buildx.build({
    ...options,
    attestations: withoutSbom(options.attestations),
    pushByDigest: repositoryName(repo),
  })
  try {
    const attached = await store.attach(repo, plan.tag, plain.digest, generator)
    if (attached) {
      deps.log.info(
        `SBOM: these layers were scanned before (${attached.from.join(', ')}): attached to ${plan.ref} without a new scan`,
      )
      return { digest: attached.digest, seconds: seconds() }
    }
    deps.log.info("SBOM: no SBOM is remembered for these layers: building again with BuildKit's scan")
  } catch (e) {
    deps.log.warning(
      `SBOM: the remembered SBOM could not be attached (${errorMessage(e)}): building again with BuildKit's scan`,
    )
  }
  const scanned = await deps.buildx.build(options)
  try {
    const tags = await store.remember(repo, scanned.digest, generator)
    deps.log.info(
      tags.length
        ? `SBOM: remembered for the next build on these layers as ${tags.join(', ')}`
        : 'SBOM: not remembered (it describes files in the model directory, or the layers could not be told apart): every build scans',
    )
  } catch (e) {
    deps.log.warning(`SBOM: could not remember it for the next build (${errorMessage(e)}); the next build scans again`)
  }
  return { digest: scanned.digest, seconds: seconds() }
}

function withoutSbom(a: Attestations | undefined): Attestations | undefined {
  return a?.provenance ? { provenance: a.provenance } : undefined
}

/**
 * Builders may ignore the compression asked for: the registry says what was pushed. A check that
 * cannot read the layers back warns and leaves the pushed image be.
 */
async function checkCompression(deps: ImageDeps, ref: string, pushed: string, image: ImageOptions): Promise<void> {
  try {
    const types = (await deps.registry.layerMediaTypes(parseImageRef(pushed), image.platforms[0])) ?? []
    const problem = compressionProblem(image.compression, ref, types)
    if (problem) deps.log.warning(problem)
  } catch (e) {
    deps.log.warning(`could not read back the layers of ${pushed} to check their compression: ${errorMessage(e)}`)
  }
}

/** One line for a base image without every requested platform: what is missing and the fixes. */
export function baseLacksPlatforms(base: string, missing: readonly string[], has: readonly string[]): string {
  return (
    `the base image ${base} has no ${missing.join(' or ')} image (it holds ${has.length ? has.join(', ') : 'no platform'}): ` +
    `use a base image whose index holds every platform in platforms (build it with docker buildx build --platform <all of them> --push), ` +
    `or remove ${missing.join(', ')} from platforms`
  )
}

/** The runtime version a base's tag names (seldonio/mlserver:1.7.1, …:1.7.1-py3.11); the digest is what counts. */
export function runtimeVersion(tag: string | undefined): string {
  return /(?:^|[^\d])(\d+\.\d+\.\d+)/.exec(tag ?? '')?.[1] ?? 'unknown'
}

/**
 * The runtime part of the identity: switching runtime is a new image. MLServer's version is the
 * one the base's tag names; kserve's is the one a kserve base's tag names
 * (…/kserve-base:0.21.0-py3.11), or on a plain Python base the one the template installs.
 */
export function runtimeIdentity(
  runtime: Runtime,
  base: Pick<ImageRef, 'repository' | 'tag'>,
): { name: Runtime; version: string } {
  if (runtime === 'mlserver') return { name: runtime, version: runtimeVersion(base.tag) }
  const named = /kserve/i.test(base.repository) ? runtimeVersion(base.tag) : 'unknown'
  return { name: runtime, version: named === 'unknown' ? KSERVE_VERSION : named }
}

/** What the MLflow side read without downloading (src/mlflow's ModelDetails fits this shape). */
export interface InspectedModel {
  readonly model: { readonly name?: string; readonly version?: string; readonly runId?: string }
  readonly files: readonly { readonly path: string; readonly size: number }[]
  /** Small files read by path: MLmodel, requirements.txt, conda.yaml… */
  readonly smallFiles: Readonly<Record<string, Uint8Array>>
}

/** The identity's model part. Requirements come from requirements.txt, else conda.yaml's pip list. */
export function modelFacts(m: InspectedModel): ModelFacts {
  const mlmodel = m.smallFiles['MLmodel']
  if (!mlmodel) throw new DeployError('the model has no MLmodel file: is the URI a model directory?')
  const text = (p: string) => {
    const b = m.smallFiles[p]
    return b ? Buffer.from(b).toString('utf8') : undefined
  }
  const requirements = text('requirements.txt') ?? condaPipRequirements(text('conda.yaml')) ?? ''
  return {
    name: m.model.name,
    version: m.model.version,
    runId: m.model.runId,
    artifacts: m.files.map((f) => ({ path: f.path, size: f.size })),
    mlmodelSha256: sha256Hex(mlmodel),
    requirements,
  }
}

/** The `pip:` list of a conda.yaml, as requirements text (older models have no requirements.txt). */
export function condaPipRequirements(yaml: string | undefined): string | undefined {
  if (!yaml) return undefined
  const doc = loadYaml(yaml)
  const deps = isPlainObject(doc) && Array.isArray(doc.dependencies) ? doc.dependencies : []
  const pip = deps.find((d): d is { pip: unknown[] } => isPlainObject(d) && Array.isArray(d.pip))
  return pip ? pip.pip.map(String).join('\n') + '\n' : undefined
}
