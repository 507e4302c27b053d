// Is the rollout we just applied done, still going, or failed? Pure decisions over the status the
// Knative and KServe controllers write (Knative's Serving API specification, "Service" status and
// conditions; KServe's InferenceService status in kserve/pkg/apis/serving/v1beta1). The two differ on purpose:
// - Knative: status.observedGeneration is the Service's own; before it reaches the generation we
//   applied, every condition describes the old spec (an old Ready=True must not count).
// - KServe: status.observedGeneration is the child Knative Service's, not the isvc's, so it cannot
//   be compared. Instead the caller records the predictor's latestCreatedRevision (and any failure)
//   before applying, and a spec change counts once a new revision shows up.
import { isPlainObject } from '../util/yaml.js'
import { podFailure } from './pods.js'

export interface KubeObject {
  apiVersion?: string
  kind?: string
  metadata?: {
    name?: string
    namespace?: string
    generation?: number
    resourceVersion?: string
    uid?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    [key: string]: unknown
  }
  spec?: Record<string, unknown>
  status?: Record<string, unknown>
}

export interface Condition {
  type: string
  status: 'True' | 'False' | 'Unknown' | string
  reason?: string
  message?: string
  lastTransitionTime?: string
}

export interface TrafficTarget {
  revision?: string
  percent?: number
  tag?: string
  url?: string
  latestRevision?: boolean
}

/** Where the service answers and which revision serves, as the controller reports it. */
export interface ServingStatus {
  url?: string
  /** The latest ready revision: what answers now. */
  revision?: string
  latestCreatedRevision?: string
  traffic: TrafficTarget[]
}

/** What the caller knows about the rollout it started. */
export interface Expectation {
  /** metadata.generation returned by the apply (Knative compares observedGeneration with it). */
  generation: number
  /** latestCreatedRevision before the apply, when the object existed. */
  previousRevision?: string
  /** Whether the applied change makes a new revision (template / predictor changed). */
  newRevision: boolean
  /** KServe: `failureKey` of the object before the apply, so a stale failure is not taken for a new one. */
  staleFailure?: string
  /**
   * KServe Standard (RawDeployment) mode: no revisions; the predictor Deployment shows the rollout
   * (standard.ts). Its metadata.generation before the apply, when it existed.
   */
  standard?: { previousDeploymentGeneration?: number }
  /**
   * KServe Knative mode: the percent the latest revision must carry (canaryTrafficPercent, or 100).
   * A change of the split alone makes no revision, and KServe's status says nothing else of it.
   */
  latestPercent?: number
}

export type Readiness =
  | { state: 'pending'; detail: string }
  | { state: 'ready'; serving: ServingStatus }
  | { state: 'failed'; reason: string; message: string }

export function conditionsOf(obj: KubeObject | undefined): Condition[] {
  const list = obj?.status?.['conditions']
  return Array.isArray(list)
    ? (list.filter((c) => isPlainObject(c) && typeof c['type'] === 'string') as Condition[])
    : []
}

export function condition(obj: KubeObject | undefined, type: string): Condition | undefined {
  return conditionsOf(obj).find((c) => c.type === type)
}

export function isInferenceService(obj: KubeObject): boolean {
  return obj.kind === 'InferenceService'
}

/** Decides the rollout state of a Knative Service or a KServe InferenceService. */
export function readiness(obj: KubeObject | undefined, expect: Expectation): Readiness {
  if (!obj) return { state: 'failed', reason: 'Deleted', message: 'the object was deleted while waiting for it' }
  return isInferenceService(obj) ? kserveReadiness(obj, expect) : knativeReadiness(obj, expect)
}

export function knativeReadiness(obj: KubeObject, expect: Expectation): Readiness {
  const observed = num(obj.status?.['observedGeneration'])
  if (observed === undefined || observed < expect.generation) {
    return {
      state: 'pending',
      detail: `waiting for the controller to observe generation ${expect.generation} (observed ${observed ?? 'none'})`,
    }
  }
  const ready = condition(obj, 'Ready')
  const serving = servingStatus(obj)
  // Knative's own IsFailed: Ready=False at the observed generation. Except while the route still
  // points at the latest revision that was once ready and has failed since (a rollback by traffic
  // switch leaves one behind): RevisionMissing then speaks of that revision, not the new one.
  if (ready?.status === 'False') {
    const routes = condition(obj, 'RoutesReady')
    const routeMissing =
      condition(obj, 'ConfigurationsReady')?.status !== 'False' &&
      routes?.status === 'False' &&
      routes.reason === 'RevisionMissing'
    // The new revision is not created yet, or not ready yet.
    const newNotReady =
      expect.newRevision &&
      (serving.latestCreatedRevision === expect.previousRevision || serving.revision !== serving.latestCreatedRevision)
    if (routeMissing && newNotReady) {
      return {
        state: 'pending',
        detail: `revision ${serving.latestCreatedRevision ?? '(new)'} is not ready yet; meanwhile the route says: ${routes.message ?? routes.reason}`,
      }
    }
    if (routeMissing && routeBehind(obj, serving, routes.message)) {
      return {
        state: 'pending',
        detail: `the route has not caught up with revision ${serving.revision ?? '(none)'} yet; it still says: ${routes.message}`,
      }
    }
    return failedFrom(obj, ready, ['ConfigurationsReady', 'RoutesReady'])
  }
  if (expect.newRevision && expect.previousRevision && serving.latestCreatedRevision === expect.previousRevision) {
    return { state: 'pending', detail: `waiting for a new revision (latest is still ${expect.previousRevision})` }
  }
  if (ready?.status !== 'True') return { state: 'pending', detail: describeCondition(ready, 'Ready') }
  if (serving.latestCreatedRevision && serving.revision !== serving.latestCreatedRevision) {
    return {
      state: 'pending',
      detail: `revision ${serving.latestCreatedRevision} is not ready yet (${serving.revision ?? 'none'} serves)`,
    }
  }
  return { state: 'ready', serving }
}

// The route's words for a revision it resolved and found failed (Knative's route_lifecycle.go,
// MarkRevisionFailed: RoutesReady=False). A revision missing altogether is worded otherwise.
const ROUTE_REVISION_FAILED = /^Revision "([^"]+)" failed to become ready\./

/**
 * Whether the route speaks of a revision it can only have reached through `latestRevision` while the
 * Configuration already has another latest ready one: the Service copies the Configuration's status
 * and the Route's, and the Route reconciles the new latest ready revision a moment later (seen on
 * the rig right after a rollback: the new revision Ready, the route still naming the failed one).
 * A pinned revision is the route's own to judge, so it never counts as behind.
 */
function routeBehind(obj: KubeObject, serving: ServingStatus, message: string | undefined): boolean {
  const named = ROUTE_REVISION_FAILED.exec(message ?? '')?.[1]
  if (!named || !serving.revision || named === serving.revision) return false
  const traffic = Array.isArray(obj.spec?.['traffic']) ? (obj.spec['traffic'] as unknown[]) : []
  return !traffic.some((t) => isPlainObject(t) && t['revisionName'] === named)
}

/** A Knative Service or a Knative-mode InferenceService, and the pods of the revision a rollout waits for. */
export interface RevisionSnapshot {
  readonly service: KubeObject
  readonly pods: readonly KubeObject[]
}

/** The revision this rollout waits for, once the controller has created it; else undefined. */
export function awaitedRevision(service: KubeObject, expect: Expectation): string | undefined {
  if (!isInferenceService(service)) {
    // KServe's observedGeneration is its child's (see the top of this file): only Knative's counts.
    const observed = num(service.status?.['observedGeneration'])
    if (observed === undefined || observed < expect.generation) return undefined
  }
  const latest = servingStatus(service).latestCreatedRevision
  if (!latest || (expect.newRevision && latest === expect.previousRevision)) return undefined
  return latest
}

/**
 * The controller's own verdict, and while it is pending, the new revision's pods: an image that
 * cannot be pulled or a container in a crash loop fails the rollout now, not at the progress
 * deadline (Knative reads a revision's pods only then; KServe copies what Knative says).
 */
export function revisionRolloutReadiness(snapshot: RevisionSnapshot | undefined, expect: Expectation): Readiness {
  if (!snapshot) return { state: 'failed', reason: 'Deleted', message: 'the object was deleted while waiting for it' }
  const verdict = readiness(snapshot.service, expect)
  if (verdict.state === 'ready') return verdict
  return candidateFailure(snapshot, expect) ?? verdict
}

/**
 * The new revision failing, whatever the controller says yet: its pods cannot start, or the
 * controller marked the object failed. Also asked while the smoke test runs, after Ready. The pods
 * speak first: they say why best, and Knative words a pod no node can take yet as RevisionFailed,
 * which the wait-window must be able to tell from a failure that lasts.
 */
export function candidateFailure(snapshot: RevisionSnapshot, expect: Expectation): Readiness | undefined {
  const revision = awaitedRevision(snapshot.service, expect)
  const failure = revision ? podFailure(snapshot.pods) : undefined
  if (failure) {
    const cannot = failure.reason === 'Unschedulable' ? 'cannot be scheduled' : 'cannot start'
    return { state: 'failed', reason: failure.reason, message: `revision ${revision} ${cannot}: ${failure.message}` }
  }
  const verdict = readiness(snapshot.service, expect)
  if (verdict.state !== 'failed') return undefined
  // Knative may say it before the pods are read: RevisionFailed with the scheduler's own words.
  return SCHEDULER_REFUSED.test(verdict.message) ? { ...verdict, reason: 'Unschedulable' } : verdict
}

/** kube-scheduler's wording for a pod no node can take ("0/3 nodes are available: …"). */
const SCHEDULER_REFUSED = /\b\d+\/\d+ nodes are available\b/

// Reasons after which KServe will not become ready without a change: Knative's revision failures
// propagated to PredictorReady, pod states copied after the progress deadline, and the model
// status failures. PredictorReady=False alone is not enough: in raw mode it mirrors the
// Deployment's Available condition, which is False while pods start.
const KSERVE_TERMINAL = new Set([
  'RevisionFailed',
  'ContainerMissing',
  'ProgressDeadlineExceeded',
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'Unschedulable',
  'NoSupportingRuntime',
  'RuntimeNotRecognized',
  'RuntimeDisabled',
  'RuntimeUnhealthy',
  'InvalidPredictorSpec',
  'ModelLoadFailed',
])

export function kserveReadiness(obj: KubeObject, expect: Expectation): Readiness {
  const serving = servingStatus(obj)
  const stale =
    expect.newRevision &&
    expect.previousRevision !== undefined &&
    serving.latestCreatedRevision === expect.previousRevision
  const failure = kserveFailure(obj)
  if (failure && !(stale && failureKey(obj) === expect.staleFailure)) return { state: 'failed', ...failure }
  if (stale) {
    return {
      state: 'pending',
      detail: `waiting for a new predictor revision (latest is still ${expect.previousRevision})`,
    }
  }
  const ready = condition(obj, 'Ready')
  if (ready?.status !== 'True') return { state: 'pending', detail: describeCondition(ready, 'Ready') }
  if (serving.latestCreatedRevision && serving.revision !== serving.latestCreatedRevision) {
    return {
      state: 'pending',
      detail: `predictor revision ${serving.latestCreatedRevision} is not ready yet (${serving.revision ?? 'none'} serves)`,
    }
  }
  const latest = serving.traffic.find((t) => t.latestRevision)
  if (expect.latestPercent !== undefined && latest && (latest.percent ?? 0) !== expect.latestPercent) {
    return {
      state: 'pending',
      detail: `the latest revision has ${latest.percent ?? 0} % of the traffic; waiting for ${expect.latestPercent} %`,
    }
  }
  return { state: 'ready', serving }
}

/**
 * A terminal KServe failure in the object's status, if any. `loadFailures: false` leaves out the
 * model load states, which KServe's Standard mode takes from whichever predictor pod it lists
 * first, old or new (standard.ts judges the current pods instead).
 */
export function kserveFailure(
  obj: KubeObject,
  { loadFailures = true }: { loadFailures?: boolean } = {},
): { reason: string; message: string } | undefined {
  const model = isPlainObject(obj.status?.['modelStatus']) ? obj.status['modelStatus'] : {}
  const info = isPlainObject(model['lastFailureInfo']) ? model['lastFailureInfo'] : {}
  const states = isPlainObject(model['states']) ? model['states'] : {}
  const transition = str(model['transitionStatus'])
  const predictor = condition(obj, 'PredictorReady')
  const loadFailed =
    transition === 'BlockedByFailedLoad' ||
    states['activeModelState'] === 'FailedToLoad' ||
    states['targetModelState'] === 'FailedToLoad'
  if (transition === 'InvalidSpec' || (loadFailures && loadFailed)) {
    return {
      reason: str(info['reason']) ?? predictor?.reason ?? transition ?? 'FailedToLoad',
      message: str(info['message']) ?? predictor?.message ?? `model status ${transition ?? 'FailedToLoad'}`,
    }
  }
  for (const c of [predictor, condition(obj, 'Ready')]) {
    if (c?.status === 'False' && c.reason && KSERVE_TERMINAL.has(c.reason)) {
      return { reason: c.reason, message: c.message ?? '' }
    }
  }
  return undefined
}

/** Identifies the failure an object shows, so one seen before an apply can be recognised later. */
export function failureKey(obj: KubeObject | undefined): string | undefined {
  if (!obj) return undefined
  const failure = kserveFailure(obj)
  if (!failure) return undefined
  const model = isPlainObject(obj.status?.['modelStatus']) ? obj.status['modelStatus'] : {}
  const info = isPlainObject(model['lastFailureInfo']) ? model['lastFailureInfo'] : {}
  return JSON.stringify([
    failure.reason,
    failure.message,
    info['time'] ?? null,
    servingStatus(obj).latestCreatedRevision,
  ])
}

/** URL, revisions and traffic of a Knative Service or InferenceService (predictor). */
export function servingStatus(obj: KubeObject): ServingStatus {
  const status = obj.status ?? {}
  if (isInferenceService(obj)) {
    const components = isPlainObject(status['components']) ? status['components'] : {}
    const predictor = isPlainObject(components['predictor']) ? components['predictor'] : {}
    return {
      url: str(status['url']) ?? str(predictor['url']),
      revision: str(predictor['latestReadyRevision']),
      latestCreatedRevision: str(predictor['latestCreatedRevision']),
      traffic: trafficOf(predictor['traffic']),
    }
  }
  return {
    url: str(status['url']),
    revision: str(status['latestReadyRevisionName']),
    latestCreatedRevision: str(status['latestCreatedRevisionName']),
    traffic: trafficOf(status['traffic']),
  }
}

/** The URL of a tagged traffic target (Knative tags, KServe's latest/prev), if reported. */
export function tagUrl(serving: ServingStatus, tag: string): string | undefined {
  return serving.traffic.find((t) => t.tag === tag)?.url
}

/** One line per condition, for logs and failure messages. */
export function describeConditions(obj: KubeObject | undefined): string[] {
  return conditionsOf(obj).map((c) => describeCondition(c, c.type))
}

export function describeCondition(c: Condition | undefined, type: string): string {
  if (!c) return `${type} condition not reported yet`
  const why = [c.reason, c.message].filter(Boolean).join(': ')
  return `${c.type}=${c.status}${why ? ` (${why})` : ''}`
}

function failedFrom(obj: KubeObject, ready: Condition, others: string[]): Readiness {
  // The first failing sub-condition says why best: on a first deploy Ready may say only
  // "RevisionMissing: … does not have any ready Revision" while ConfigurationsReady names the cause.
  const detail = [...others.map((t) => condition(obj, t)), ready].find((c) => c?.status === 'False' && c.message)
  return {
    state: 'failed',
    reason: detail?.reason ?? ready.reason ?? 'Failed',
    message: detail?.message ?? '',
  }
}

function trafficOf(value: unknown): TrafficTarget[] {
  if (!Array.isArray(value)) return []
  return value.filter(isPlainObject).map((t) => {
    const target: TrafficTarget = {}
    if (str(t['revisionName'])) target.revision = str(t['revisionName'])
    if (num(t['percent']) !== undefined) target.percent = num(t['percent'])
    if (str(t['tag'])) target.tag = str(t['tag'])
    if (str(t['url'])) target.url = str(t['url'])
    if (typeof t['latestRevision'] === 'boolean') target.latestRevision = t['latestRevision']
    return target
  })
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}
