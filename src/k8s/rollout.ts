// Apply: the manifest with the traffic and the progress deadline asked for, server-side applied,
// and what the wait and a rollback need to know about it (the previous object, the expectation).
// Waiting is rollout-watch.ts; undoing a failed update is rollback.ts.
import { DeployError, errorMessage } from '../util/errors.js'
import type { Clock } from '../util/clock.js'
import type { Logger } from '../util/logger.js'
import { isPlainObject } from '../util/yaml.js'
import { CONFIG_MAP, DEPLOYMENT, describe, servingKindOf, type Kube, type ServingKind } from './kube.js'
import { failureKey, isInferenceService, servingStatus, type Expectation, type KubeObject } from './readiness.js'
import { configDefaultMode, deploymentModeOf, predictorName, type DeploymentMode } from './standard.js'

export interface RolloutDeps {
  readonly kube: Kube
  readonly clock: Clock
  readonly log: Logger
}

export interface TrafficOptions {
  /** Percent of traffic for the new revision (Knative split / KServe canaryTrafficPercent). */
  readonly trafficPercent?: number
  /** Knative tag for the new revision: it gets its own URL. */
  readonly tag?: string
  /**
   * Seconds after which the controller itself gives up on a revision that does not come up
   * (Knative's progress-deadline, 600 s by default), so it agrees with the action's own timeout.
   */
  readonly progressDeadlineS?: number
}

/** The tag a split without one gets, so the smoke test reaches the new revision, not the split. */
export const CANDIDATE_TAG = 'candidate'
/** KServe's tag for the revision rolling out, with tag routing on (serving.kserve.io/enable-tag-routing). */
export const KSERVE_LATEST_TAG = 'latest'
const TAG_ROUTING = 'serving.kserve.io/enable-tag-routing'
const PROGRESS_DEADLINE = 'serving.knative.dev/progress-deadline'

/**
 * The tag whose URL reaches the new revision alone: the user's; else, when a split keeps part of
 * the traffic elsewhere, one the action adds (Knative) or KServe's `latest`.
 */
export function candidateTag(manifest: KubeObject, options: TrafficOptions): string | undefined {
  if (options.tag) return options.tag
  if (options.trafficPercent === undefined || options.trafficPercent >= 100) return undefined
  return isInferenceService(manifest) ? KSERVE_LATEST_TAG : CANDIDATE_TAG
}

/** What the apply did, and what a rollback needs. Plain data. */
export interface Applied {
  readonly kind: ServingKind
  readonly namespace: string
  readonly name: string
  readonly object: KubeObject
  readonly previous: KubeObject | undefined
  readonly expectation: Expectation
  readonly created: boolean
  /** False when the apply changed nothing (same generation). */
  readonly changed: boolean
  /** The tag whose URL reaches the new revision alone (candidateTag), if any. */
  readonly tag: string | undefined
  /**
   * Set when the new revision was staged at 0 % (see parkedRevision): the traffic asked for, to
   * apply once the new revision is verified.
   */
  readonly final?: TrafficOptions
}

export async function applyManifest(
  deps: RolloutDeps,
  manifest: KubeObject,
  options: TrafficOptions & {
    takeOver?: boolean
    dryRun?: boolean
    /** Stage the new revision at 0 % when a parked revision would take its traffic (a deploy that waits). */
    stage?: boolean
    signal?: AbortSignal
  } = {},
): Promise<Applied> {
  const kind = servingKindOf(manifest)
  const { namespace, name } = manifest.metadata as { namespace: string; name: string }
  const before = await deps.kube.get(kind, namespace, name, options.signal)
  const standardMode =
    isInferenceService(manifest) && (await kserveMode(deps, before, manifest, options.signal)) === 'Standard'
  if (standardMode && options.trafficPercent !== undefined) {
    throw new DeployError(
      `${describe({ kind, namespace, name })} runs in KServe's Standard (RawDeployment) mode, which has no canary: traffic-percent needs the Knative mode`,
    )
  }
  // "The latest revision" is the latest *ready* one: while a parked revision holds that place, it
  // would take the new revision's traffic until the new one is ready. So stage the new one at 0 %.
  const parked = options.stage && !standardMode && before ? parkedRevision(before) : undefined
  if (parked)
    deps.log.info(
      `revision ${parked} is the latest ready one but serves nothing: the new revision is staged at 0 % and gets its traffic once verified`,
    )
  const traffic: TrafficOptions = parked ? { trafficPercent: 0, tag: options.tag } : options
  let desired = withTraffic(manifest, traffic, before)
  let standard: Expectation['standard']
  if (standardMode) {
    standard = await deploymentGeneration(deps, namespace, name, options.signal)
  } else if (options.progressDeadlineS !== undefined) {
    desired = withProgressDeadline(desired, options.progressDeadlineS)
  }
  const { object, previous } = await deps.kube.apply(desired, {
    current: { object: before },
    takeOver: options.takeOver,
    dryRun: options.dryRun,
    signal: options.signal,
  })
  const generation = object.metadata?.generation ?? 0
  const changed = !previous || previous.metadata?.generation !== generation
  return {
    kind,
    namespace,
    name,
    object,
    previous,
    created: !previous,
    changed,
    tag: candidateTag(manifest, traffic),
    expectation: expectationFor(previous, object, standard),
    ...(parked ? { final: { trafficPercent: options.trafficPercent, tag: options.tag } } : {}),
  }
}

/**
 * The latest ready revision when it takes no traffic, else undefined. A failed update rolled back
 * by a traffic switch leaves one (it was Ready, then failed its smoke test or crashed), and so
 * does a candidate staged behind a tag at 0 %.
 */
export function parkedRevision(previous: KubeObject): string | undefined {
  const { revision, traffic } = servingStatus(previous)
  if (!revision || traffic.length === 0) return undefined
  return traffic.some((t) => t.revision === revision && (t.percent ?? 0) > 0) ? undefined : revision
}

/**
 * Knative's progress deadline for the new revision, unless the template sets one: on the revision
 * template (Knative), or on the InferenceService, whose annotations KServe copies onto its
 * Knative revisions. The value comes from the timeout, not the time left, so the same spec gives
 * the same template (no new revision on a re-run).
 */
export function withProgressDeadline(manifest: KubeObject, seconds: number): KubeObject {
  const copy = structuredClone(manifest)
  const holder = isInferenceService(copy)
    ? (copy.metadata ??= {})
    : (((((copy.spec ??= {})['template'] ??= {}) as KubeObject).metadata ??= {}) as NonNullable<KubeObject['metadata']>)
  const annotations = (holder.annotations ??= {})
  annotations[PROGRESS_DEADLINE] ??= `${Math.max(1, Math.ceil(seconds))}s`
  return copy
}

/**
 * The KServe deployment mode the object runs in. The cluster default is read only when neither
 * the existing object's status nor the annotation says; reading it may be forbidden, and then
 * KServe's shipped default (Knative) is assumed.
 */
async function kserveMode(
  deps: RolloutDeps,
  existing: KubeObject | undefined,
  manifest: KubeObject,
  signal?: AbortSignal,
): Promise<DeploymentMode> {
  const known = deploymentModeOf(existing, manifest, undefined)
  if (existing?.status?.['deploymentMode'] || manifest.metadata?.annotations?.['serving.kserve.io/deploymentMode']) {
    return known
  }
  try {
    const config = await deps.kube.read(CONFIG_MAP, 'kserve', 'inferenceservice-config', signal)
    const mode = deploymentModeOf(existing, manifest, configDefaultMode(config))
    deps.log.debug(`KServe deployment mode ${mode} (inferenceservice-config ${config ? 'read' : 'absent'})`)
    return mode
  } catch (err) {
    deps.log.info(`cannot read KServe's inferenceservice-config (${errorMessage(err)}): assuming the ${known} mode`)
    return known
  }
}

/** Standard mode: the predictor Deployment's generation now (undefined before the first rollout). */
export async function deploymentGeneration(
  deps: RolloutDeps,
  namespace: string,
  name: string,
  signal?: AbortSignal,
): Promise<NonNullable<Expectation['standard']>> {
  const deployment = await deps.kube.read(DEPLOYMENT, namespace, predictorName(name), signal)
  const generation = deployment?.metadata?.generation
  return generation === undefined ? {} : { previousDeploymentGeneration: generation }
}

export function expectationFor(
  previous: KubeObject | undefined,
  applied: KubeObject,
  standard?: Expectation['standard'],
): Expectation {
  const expect: Expectation = {
    generation: applied.metadata?.generation ?? 0,
    newRevision:
      !previous ||
      changesRevision(previous, applied) ||
      (standard !== undefined && changesPodMetadata(previous, applied)),
  }
  if (standard) expect.standard = standard
  if (previous) {
    const revision = servingStatus(previous).latestCreatedRevision
    if (revision) expect.previousRevision = revision
    const stale = failureKey(previous)
    if (stale) expect.staleFailure = stale
  }
  if (isInferenceService(applied) && !standard) {
    // KServe splits only once a revision was rolled out to 100 %; until then, the latest takes all.
    const canary = (applied.spec?.['predictor'] as { canaryTrafficPercent?: unknown } | undefined)?.canaryTrafficPercent
    const splits = typeof canary === 'number' && previous !== undefined && rolledOutRevision(previous) !== undefined
    expect.latestPercent = splits ? canary : 100
  }
  return expect
}

/**
 * Whether the change between two server copies of the object makes a new revision: Knative cuts one
 * per change of spec.template; KServe per change of the predictor (canaryTrafficPercent aside).
 */
export function changesRevision(before: KubeObject, after: KubeObject): boolean {
  const part = (o: KubeObject) => {
    if (!isInferenceService(o)) return o.spec?.['template']
    const predictor = isPlainObject(o.spec?.['predictor']) ? { ...o.spec['predictor'] } : {}
    delete predictor['canaryTrafficPercent']
    return predictor
  }
  return canonical(part(before)) !== canonical(part(after))
}

// What KServe does not copy from the isvc to its pods (constants.ServiceAnnotationDisallowedList).
const NOT_ON_PODS = new Set([
  'autoscaling.knative.dev/min-scale',
  'autoscaling.knative.dev/max-scale',
  'kubectl.kubernetes.io/last-applied-configuration',
  'modelFormat',
])

/**
 * Standard mode: KServe copies the isvc's labels and annotations into the predictor's pod
 * template, so changing one (the action's provenance annotations included) rolls new pods too.
 */
export function changesPodMetadata(before: KubeObject, after: KubeObject): boolean {
  const part = (o: KubeObject) => ({
    labels: o.metadata?.labels ?? {},
    annotations: Object.fromEntries(
      Object.entries(o.metadata?.annotations ?? {}).filter(
        ([k]) => !NOT_ON_PODS.has(k) && !k.startsWith('internal.serving.kserve.io/'),
      ),
    ),
  })
  return canonical(part(before)) !== canonical(part(after))
}

/**
 * Sets the traffic the user asked for. Knative: the latest revision gets `percent` (and the tag;
 * a split without one gets `candidate`, so the smoke test can reach the new revision alone),
 * the stable revision the rest; a tag alone stages the new revision at 0 %. KServe:
 * canaryTrafficPercent. Nothing asked: no traffic block, so server-side apply drops one an earlier
 * run set and 100 % goes to the latest revision.
 */
export function withTraffic(
  manifest: KubeObject,
  options: TrafficOptions,
  previous: KubeObject | undefined,
): KubeObject {
  const { trafficPercent } = options
  if (trafficPercent === undefined && options.tag === undefined) return manifest
  const copy = structuredClone(manifest)
  const spec = (copy.spec ??= {})
  if (isInferenceService(copy)) {
    if (options.tag !== undefined) throw new DeployError('traffic tags are Knative-only; KServe takes traffic-percent')
    const predictor = (isPlainObject(spec['predictor']) ? spec['predictor'] : (spec['predictor'] = {})) as Record<
      string,
      unknown
    >
    predictor['canaryTrafficPercent'] = trafficPercent
    // The `latest` tag's URL reaches the canary alone: the smoke test's way in.
    if (candidateTag(copy, options)) ((copy.metadata ??= {}).annotations ??= {})[TAG_ROUTING] = 'true'
    return copy
  }
  const tag = candidateTag(copy, options)
  const serving = previous && stableRevision(previous)
  const percent = serving ? (trafficPercent ?? 0) : 100
  const latest: Record<string, unknown> = { latestRevision: true, percent }
  if (tag) latest['tag'] = tag
  spec['traffic'] = serving && percent < 100 ? [latest, { revisionName: serving, percent: 100 - percent }] : [latest]
  return copy
}

/**
 * The revision that keeps the rest of the traffic: during a split, the pinned revision carrying the
 * most of it (so moving 10 % → 50 % → 0 % on the same candidate keeps splitting with the same stable
 * revision, and 0 % rolls all traffic back to it); otherwise the revision serving everything now.
 */
export function stableRevision(previous: KubeObject): string | undefined {
  const status = servingStatus(previous)
  const pinned = status.traffic
    .filter((t) => !t.latestRevision && t.revision && (t.percent ?? 0) > 0)
    .sort((a, b) => (b.percent ?? 0) - (a.percent ?? 0))[0]
  return pinned?.revision ?? status.revision
}

/** KServe: the last revision it rolled out to 100 %, which canaryTrafficPercent 0 goes back to. */
export function rolledOutRevision(isvc: KubeObject): string | undefined {
  const components = isPlainObject(isvc.status?.['components']) ? isvc.status['components'] : {}
  const predictor = isPlainObject(components['predictor']) ? components['predictor'] : {}
  const value = predictor['latestRolledoutRevision']
  return typeof value === 'string' && value ? value : undefined
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    isPlainObject(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  )
}
