// Apply, wait for the new generation, and undo a failed update. The previous object is read before
// the apply; if the rollout (or the smoke test after it) fails, traffic goes back to the revisions
// that served before (KServe Standard mode, which has none, gets its previous spec again).
// A failed first deploy has nothing to go back to: it is left in place for inspection.
import type { Clock } from '../util/clock.js'
import { formatDuration } from '../util/duration.js'
import { DeployError, errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { isPlainObject } from '../util/yaml.js'
import {
  CONFIG_MAP,
  DEPLOYMENT,
  FIELD_MANAGER,
  INFERENCE_SERVICE,
  POD,
  REPLICA_SET,
  SERVICE,
  KubeApiError,
  describe,
  servingKindOf,
  type Kube,
  type ServingKind,
} from './kube.js'
import {
  awaitedRevision,
  candidateFailure,
  condition,
  describeCondition,
  describeConditions,
  failureKey,
  isInferenceService,
  revisionRolloutReadiness,
  servingStatus,
  tagUrl,
  type Expectation,
  type KubeObject,
  type Readiness,
  type RevisionSnapshot,
  type ServingStatus,
  type TrafficTarget,
} from './readiness.js'
import {
  configDefaultMode,
  currentReplicaSet,
  deploymentModeOf,
  podsOf,
  predictorAddress,
  predictorName,
  standardReadiness,
  type DeploymentMode,
  type PredictorSnapshot,
} from './standard.js'
import { appliedFields, projectFields } from './managed-fields.js'
import { podFailure } from './pods.js'
import { WaitError, pollingStream, waitFor, type ObjectStream, type Verdict } from './wait.js'

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
  readonly tag: string | undefined
}

export interface Ready {
  readonly url: string | undefined
  /** The URL that reaches this rollout's revision: the tag's URL when a tag was asked for, else `url`. */
  readonly smokeUrl: string | undefined
  /**
   * KServe Standard: the predictor Service's in-cluster address. Without an ingress address, the
   * smoke test calls it (the cluster's ingress may be out of the runner's reach).
   */
  readonly directUrl?: string
  readonly revision: string | undefined
  readonly previousRevision: string | undefined
  readonly traffic: readonly TrafficTarget[]
  readonly waitedMs: number
}

export type RolloutOutcome = 'rolled-back' | 'left-for-inspection' | 'rollback-failed' | 'not-rolled-back' | 'gone'

/** What a failed rollout leaves: what serves now, and the revision that failed (none in Standard mode). */
export interface RolloutFound {
  readonly serving?: { readonly url?: string; readonly revision?: string }
  readonly failedRevision?: string
}

/** The rollout failed; says whether and what was rolled back, and what serves now. */
export class RolloutError extends DeployError {
  constructor(
    message: string,
    readonly outcome: RolloutOutcome,
    readonly evidence: readonly string[],
    readonly found: RolloutFound = {},
  ) {
    super(message)
  }
}

export async function applyManifest(
  deps: RolloutDeps,
  manifest: KubeObject,
  options: TrafficOptions & { takeOver?: boolean; dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<Applied> {
  const kind = servingKindOf(manifest)
  const { namespace, name } = manifest.metadata as { namespace: string; name: string }
  const before = await deps.kube.get(kind, namespace, name, options.signal)
  let desired = withTraffic(manifest, options, before)
  let standard: Expectation['standard']
  if (isInferenceService(desired) && (await kserveMode(deps, before, desired, options.signal)) === 'Standard') {
    if (options.trafficPercent !== undefined) {
      throw new DeployError(
        `${describe({ kind, namespace, name })} runs in KServe's Standard (RawDeployment) mode, which has no canary: traffic-percent needs the Knative mode`,
      )
    }
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
    tag: candidateTag(manifest, options),
    expectation: expectationFor(previous, object, standard),
  }
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
async function deploymentGeneration(
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

export interface RolloutWaitOptions {
  /** For the wait itself. */
  readonly timeoutMs: number
  /** For a rollback after a failure, asked when it starts (what is left of the run's budget). */
  readonly rollbackMs?: () => number
  /** How long a failure the cluster may still resolve (Unschedulable) is tolerated. */
  readonly waitWindowMs?: number
  readonly signal?: AbortSignal
}

/** Waits for the applied generation; on failure rolls back an update (or leaves a first deploy). */
export async function waitReady(deps: RolloutDeps, applied: Applied, options: RolloutWaitOptions): Promise<Ready> {
  const what = `${describe(applied)} (generation ${applied.expectation.generation})`
  deps.log.info(
    `waiting up to ${Math.round(options.timeoutMs / 1000)} s for ${what} to become ready` +
      (applied.changed ? '' : ' (the apply changed nothing)'),
  )
  let settled: Settled
  try {
    settled = await waitObject(deps, applied, applied.expectation, { ...options, what })
  } catch (err) {
    if (options.signal?.aborted) throw err
    return rollBack(deps, applied, err, {
      timeoutMs: options.rollbackMs?.() ?? options.timeoutMs,
      signal: options.signal,
    })
  }
  const { serving, address } = settled
  const previousRevision = applied.previous && servingStatus(applied.previous).revision
  return {
    url: serving.url,
    smokeUrl: candidateUrl(deps, applied, serving),
    directUrl: address,
    revision: serving.revision,
    previousRevision,
    traffic: serving.traffic,
    waitedMs: settled.elapsedMs,
  }
}

/** The URL that reaches this rollout's revision alone: its tag's, else the service's. */
function candidateUrl(deps: RolloutDeps, applied: Applied, serving: ServingStatus): string | undefined {
  if (!applied.tag) return serving.url
  const url = tagUrl(serving, applied.tag)
  if (!url) {
    deps.log.warning(
      `the status reports no URL for tag ${applied.tag}: the smoke test calls ${serving.url ?? 'the service URL'}, which routes by the traffic split`,
    )
  }
  return url ?? serving.url
}

/** The end of a successful wait: what serves, and (Standard mode) where the host reaches it. */
interface Settled {
  readonly serving: ServingStatus
  readonly elapsedMs: number
  readonly address?: string
}

/** One way of watching a rollout: what to read, how to judge it, what to show when it fails. */
interface Watched<T> {
  readonly stream: ObjectStream<T>
  readonly judge: (snapshot: T | undefined) => Readiness
  /** The serving object in a snapshot (its uid must stay the one this run applied to). */
  readonly objectOf: (snapshot: T) => KubeObject
  /** Lines for a failure message besides the object's conditions and events. */
  readonly evidence: (snapshot: T | undefined) => string[]
}

/** Failures the cluster may still resolve: a cluster autoscaler adds a node for an Unschedulable pod. */
const TRANSIENT = new Set(['Unschedulable'])
/** Failures that mean the object this run applied is no longer there: nothing to roll back. */
const GONE = new Set(['Deleted', 'Replaced'])

/**
 * Turns a transient failure into pending for `windowMs` from when it is first seen in a row; the
 * failure after that says how long it lasted.
 */
export function tolerateTransient(windowMs: number, clock: Pick<Clock, 'now'>): (r: Readiness) => Readiness {
  let since: number | undefined
  return (r) => {
    if (r.state !== 'failed' || !TRANSIENT.has(r.reason)) {
      since = undefined
      return r
    }
    since ??= clock.now()
    const lasted = clock.now() - since
    if (lasted < windowMs) {
      return {
        state: 'pending',
        // No elapsed time here: the wait logs each new detail, and this one would change every read.
        detail: `${r.reason}, tolerated for the wait-window (${formatDuration(windowMs)}): ${r.message}`,
      }
    }
    return { ...r, message: `${r.message} (for longer than the wait-window, ${formatDuration(windowMs)})` }
  }
}

/** The rollout's verdict on a snapshot: the object must still be the one applied (same uid). */
function judgeOf<T>(
  watched: Watched<T>,
  uid: string | undefined,
  tolerate: (r: Readiness) => Readiness,
): (snapshot: T | undefined) => Readiness {
  return (snapshot) => {
    const now = snapshot && watched.objectOf(snapshot).metadata?.uid
    if (uid && now && now !== uid) {
      return {
        state: 'failed',
        reason: 'Replaced',
        message: `the object was deleted and created again while waiting (uid ${now}; this run applied ${uid})`,
      }
    }
    return tolerate(watched.judge(snapshot))
  }
}

async function waitWatched<T>(
  deps: RolloutDeps,
  watched: Watched<T>,
  target: { kind: ServingKind; namespace: string; name: string; uid?: string },
  options: { timeoutMs: number; waitWindowMs?: number; signal?: AbortSignal; what: string },
) {
  const judge = judgeOf(watched, target.uid, tolerateTransient(options.waitWindowMs ?? 0, deps.clock))
  return waitFor(watched.stream, (s) => verdict(judge(s)), {
    ...options,
    clock: deps.clock,
    log: deps.log,
    diagnose: async (s) => [
      ...describeConditions(s && watched.objectOf(s)).map((c) => `condition ${c}`),
      ...watched.evidence(s),
      ...(await deps.kube.events(target.kind, target.namespace, target.name, options.signal)).map((e) => `event ${e}`),
    ],
  })
}

const verdict = (r: Readiness): Verdict => (r.state === 'ready' ? { state: 'done' } : r)
const podLines = (pods: readonly KubeObject[]) =>
  [podFailure(pods)].filter((f) => f !== undefined).map((f) => `pod ${f.reason}: ${f.message}`)

/** Knative Services and Knative-mode InferenceServices: the object, watched, and its new revision's pods. */
function watchRevisions(deps: RolloutDeps, target: Target, expect: Expectation): Watched<RevisionSnapshot> {
  return {
    stream: revisionStream(deps, target, expect),
    judge: (s) => revisionRolloutReadiness(s, expect),
    objectOf: (s) => s.service,
    evidence: (s) => podLines(s?.pods ?? []),
  }
}

/** KServe Standard mode: no revisions and no single object to watch; the isvc, its Deployment and pods, re-read. */
function watchPredictor(deps: RolloutDeps, target: Target, expect: Expectation): Watched<PredictorSnapshot> {
  return {
    stream: pollingStream(
      (signal) => readPredictor(deps.kube, target.namespace, target.name, signal),
      deps.clock,
      1_000,
    ),
    judge: (s) => standardReadiness(s, expect),
    objectOf: (s) => s.isvc,
    evidence: (s) => [
      ...describeConditions(s?.deployment).map((c) => `condition Deployment ${c}`),
      ...podLines(s?.pods ?? []),
    ],
  }
}

type Target = { kind: ServingKind; namespace: string; name: string; object?: KubeObject }

async function waitObject(
  deps: RolloutDeps,
  target: Target,
  expect: Expectation,
  options: { timeoutMs: number; waitWindowMs?: number; signal?: AbortSignal; what: string },
): Promise<Settled> {
  const { namespace, name } = target
  const uid = target.object?.metadata?.uid
  if (expect.standard) {
    const result = await waitWatched(deps, watchPredictor(deps, target, expect), { ...target, uid }, options)
    const snapshot = result.object!
    const ready = standardReadiness(snapshot, expect)
    const service = await deps.kube.read(SERVICE, namespace, predictorName(name), options.signal)
    return {
      serving: ready.state === 'ready' ? ready.serving : servingStatus(snapshot.isvc),
      elapsedMs: result.elapsedMs,
      address: predictorAddress(service, podsOf(currentReplicaSet(snapshot), snapshot.pods)),
    }
  }
  const result = await waitWatched(deps, watchRevisions(deps, target, expect), { ...target, uid }, options)
  return { serving: servingStatus(result.object!.service), elapsedMs: result.elapsedMs }
}

/**
 * The object through a watch (Ready is seen the moment the controller writes it) and its new
 * revision's pods re-read every second (they change without the object changing).
 */
export function revisionStream(
  deps: RolloutDeps,
  target: Target,
  expect: Expectation,
  podsEveryMs = 1_000,
): ObjectStream<RevisionSnapshot> {
  const { kind, namespace, name } = target
  let service: KubeObject | undefined
  let pods: readonly KubeObject[] = []
  const readPods = async (signal: AbortSignal) => {
    pods = service ? await candidatePods(deps.kube, namespace, service, expect, signal) : []
  }
  const snapshot = () => (service ? { service, pods } : undefined)
  return {
    async list(signal) {
      const listed = await deps.kube.list(kind, namespace, name, signal)
      service = listed.object
      await readPods(signal)
      return { object: snapshot(), resourceVersion: listed.resourceVersion }
    },
    async watch(resourceVersion, onEvent, signal) {
      const stop = new AbortController()
      const both = AbortSignal.any([signal, stop.signal])
      const polling = (async () => {
        while (!both.aborted) {
          await deps.clock.sleep(podsEveryMs, both).catch(() => undefined)
          if (both.aborted || !service) continue
          try {
            await readPods(both)
            onEvent('MODIFIED', snapshot())
          } catch (err) {
            // The next read may work; the object's watch keeps the wait going meanwhile.
            if (!both.aborted) deps.log.debug(`reading the pods of ${describe(target)}: ${errorMessage(err)}`)
          }
        }
      })()
      try {
        await deps.kube.watch(
          kind,
          namespace,
          name,
          resourceVersion,
          (type, raw) => {
            if (type === 'ERROR' || type === 'BOOKMARK') return onEvent(type, raw)
            const object = raw as KubeObject
            service = type === 'DELETED' ? undefined : object
            onEvent(type, snapshot(), object.metadata?.resourceVersion)
          },
          both,
        )
      } finally {
        stop.abort()
        await polling
      }
    },
  }
}

/** The pods of the revision a rollout waits for (none before it exists, or without list on pods). */
async function candidatePods(
  kube: Kube,
  namespace: string,
  service: KubeObject,
  expect: Expectation,
  signal?: AbortSignal,
): Promise<readonly KubeObject[]> {
  const revision = awaitedRevision(service, expect)
  if (!revision) return []
  try {
    return await kube.readAll(POD, namespace, `serving.knative.dev/revision=${revision}`, signal)
  } catch (err) {
    // Without list on pods, the rollout is judged on the controller's conditions alone (slower failures).
    if (err instanceof KubeApiError && err.status === 403) return []
    throw err
  }
}

/** The InferenceService and its Standard-mode predictor: Deployment, ReplicaSets, pods. */
export async function readPredictor(
  kube: Kube,
  namespace: string,
  name: string,
  signal?: AbortSignal,
): Promise<PredictorSnapshot | undefined> {
  const isvc = (await kube.list(INFERENCE_SERVICE, namespace, name, signal)).object
  if (!isvc) return undefined
  const deployment = await kube.read(DEPLOYMENT, namespace, predictorName(name), signal)
  const labels = (deployment?.spec?.['selector'] as { matchLabels?: Record<string, string> } | undefined)?.matchLabels
  if (!deployment || !labels) return { isvc, deployment, replicaSets: [], pods: [] }
  const selector = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')
  const [replicaSets, pods] = await Promise.all([
    kube.readAll(REPLICA_SET, namespace, selector, signal),
    kube.readAll(POD, namespace, selector, signal),
  ])
  return { isvc, deployment, replicaSets, pods }
}

/**
 * Watches a rollout that was Ready while the smoke test runs: resolves with the candidate's
 * failure as soon as its controller or its pods report one, or undefined when `signal` aborts.
 */
export async function watchCandidate(
  deps: RolloutDeps,
  applied: Applied,
  options: { waitWindowMs?: number; signal: AbortSignal },
): Promise<{ reason: string; message: string } | undefined> {
  const expect = applied.expectation
  const target = { ...applied, uid: applied.object.metadata?.uid }
  const waitOptions = {
    timeoutMs: 24 * 3_600_000,
    waitWindowMs: options.waitWindowMs,
    signal: options.signal,
    what: `${describe(applied)} during the smoke test`,
  }
  const failureOnly = (r: Readiness): Readiness =>
    r.state === 'failed' ? r : { state: 'pending', detail: 'no failure reported' }
  try {
    if (expect.standard) {
      const watched = watchPredictor(deps, applied, expect)
      await waitWatched(deps, { ...watched, judge: (s) => failureOnly(watched.judge(s)) }, target, waitOptions)
    } else {
      const watched = watchRevisions(deps, applied, expect)
      const judge = (s: RevisionSnapshot | undefined) =>
        failureOnly(s ? (candidateFailure(s, expect) ?? { state: 'pending', detail: '' }) : watched.judge(s))
      await waitWatched(deps, { ...watched, judge }, target, waitOptions)
    }
  } catch (err) {
    if (err instanceof WaitError) return { reason: err.reason, message: err.message }
  }
  return undefined
}

/** Whether a rollback can switch traffic back, and how; pure. */
export type RollbackPlan =
  | {
      readonly kind: 'traffic'
      readonly body: KubeObject
      /** The traffic the status must show once the switch is done. */
      readonly targets: readonly TrafficTarget[]
      readonly says: string
    }
  | { readonly kind: 'respec'; readonly body: KubeObject; readonly says: string }
  | { readonly kind: 'none'; readonly why: string }

/**
 * How to undo a failed update of `current` (the object as it is now):
 * - Knative: route traffic as it was before the update, by revision name (the previous revisions
 *   are still there and Ready; no new revision, no cold start). The failed revision stays unrouted.
 * - KServe Knative mode: canaryTrafficPercent 0, which sends everything to the last revision
 *   KServe rolled out (its documented rollback).
 * - KServe Standard mode: no revisions, so the previous spec is applied again.
 * Each body names the object's uid: the API server refuses to re-create an object that was
 * deleted meanwhile. Only the fields the action applied are sent.
 */
export function planRollback(applied: Applied, current: KubeObject): RollbackPlan {
  const previous = applied.previous!
  const was = modelOf(previous)
  // The previous spec describes a revision only if it is the one that spec made (an earlier
  // rollback may have left a failed spec in place, serving an older revision).
  const madeBy = (revision: string | undefined) =>
    was && revision && servingStatus(previous).latestCreatedRevision === revision ? ` (${was})` : ''
  const withUid = (body: KubeObject) => ({ ...body, metadata: { ...body.metadata, uid: current.metadata?.uid } })
  if (applied.expectation.standard) {
    return {
      kind: 'respec',
      body: withUid(restoreManifest(previous)),
      says: `the previous spec applied again${was ? ` (${was})` : ''}`,
    }
  }
  const before = servingStatus(previous)
  if (isInferenceService(current)) {
    const rolledOut = rolledOutRevision(previous) ?? before.revision
    if (!rolledOut) return { kind: 'none', why: 'the previous InferenceService had no ready revision to go back to' }
    const body = withUid(restoreManifest(current))
    const spec = (body.spec ??= {})
    spec['predictor'] = { ...(isPlainObject(spec['predictor']) ? spec['predictor'] : {}), canaryTrafficPercent: 0 }
    return {
      kind: 'traffic',
      body,
      targets: [{ revision: rolledOut, percent: 100 }],
      says: `canaryTrafficPercent 0: revision ${rolledOut}${madeBy(rolledOut)} takes all traffic`,
    }
  }
  const targets = before.traffic
    .filter((t) => t.revision)
    .map((t) => ({ revision: t.revision, percent: t.percent ?? 0, ...(t.tag ? { tag: t.tag } : {}) }))
  if (targets.length === 0 && before.revision) targets.push({ revision: before.revision, percent: 100 })
  if (targets.length === 0) return { kind: 'none', why: 'the previous Service had no ready revision to go back to' }
  const body = withUid(restoreManifest(current))
  ;(body.spec ??= {})['traffic'] = targets.map((t) => ({
    revisionName: t.revision,
    percent: t.percent,
    ...(t.tag ? { tag: t.tag } : {}),
  }))
  return {
    kind: 'traffic',
    body,
    targets,
    says: `traffic switched back to ${formatTargets(targets)}${madeBy(topRevision(targets))}`,
  }
}

/** KServe: the last revision it rolled out to 100 %, which canaryTrafficPercent 0 goes back to. */
function rolledOutRevision(isvc: KubeObject): string | undefined {
  const components = isPlainObject(isvc.status?.['components']) ? isvc.status['components'] : {}
  const predictor = isPlainObject(components['predictor']) ? components['predictor'] : {}
  const value = predictor['latestRolledoutRevision']
  return typeof value === 'string' && value ? value : undefined
}

const formatTargets = (targets: readonly TrafficTarget[]) =>
  targets.map((t) => `${t.revision} ${t.percent ?? 0}%`).join(', ')

const topRevision = (traffic: readonly TrafficTarget[]) =>
  [...trafficByRevision(traffic)].sort((a, b) => b[1] - a[1])[0]?.[0]

/** Percent per revision, tags and latestRevision aside. */
function trafficByRevision(traffic: readonly TrafficTarget[]): Map<string, number> {
  const sums = new Map<string, number>()
  for (const t of traffic) if (t.revision) sums.set(t.revision, (sums.get(t.revision) ?? 0) + (t.percent ?? 0))
  for (const [k, v] of sums) if (v === 0) sums.delete(k)
  return sums
}

/**
 * A traffic switch is done when the status routes what was asked (per revision), at the applied
 * generation for Knative (KServe's observedGeneration is its child's). Anything else is pending
 * until the deadline: while routes move, Unknown and transitional reasons are normal.
 */
export function trafficSwitched(
  obj: KubeObject | undefined,
  targets: readonly TrafficTarget[],
  generation: number,
): Readiness {
  if (!obj) return { state: 'failed', reason: 'Deleted', message: 'the object was deleted during the rollback' }
  const serving = servingStatus(obj)
  if (!isInferenceService(obj)) {
    const observed = obj.status?.['observedGeneration']
    if (typeof observed !== 'number' || observed < generation) {
      return { state: 'pending', detail: `waiting for the controller to observe generation ${generation}` }
    }
  }
  const want = trafficByRevision(targets)
  const now = trafficByRevision(serving.traffic)
  const same = want.size === now.size && [...want].every(([r, p]) => now.get(r) === p)
  if (!same) {
    const shown = serving.traffic.length ? formatTargets(serving.traffic) : 'not reported'
    return { state: 'pending', detail: `traffic is ${shown}; switching to ${formatTargets(targets)}` }
  }
  // The status names the new split before the ingress routes it: wait for the route too.
  const route = condition(obj, isInferenceService(obj) ? 'PredictorRouteReady' : 'RoutesReady')
  if (route && route.status !== 'True') {
    return {
      state: 'pending',
      detail: `traffic switched; waiting for the route: ${describeCondition(route, route.type)}`,
    }
  }
  return { state: 'ready', serving }
}

/** The revision carrying most of the traffic now, and the URL: what serves. */
export function servingNow(serving: ServingStatus | undefined): { url?: string; revision?: string } {
  if (!serving) return {}
  return { url: serving.url, revision: topRevision(serving.traffic) ?? serving.revision }
}

/**
 * Undoes a failed update (planRollback says how) and waits for it, bounded; always throws a
 * RolloutError that says what happened, what serves now and which revision failed. A first deploy
 * is left as it is for inspection; an object deleted or replaced meanwhile is left alone.
 */
export async function rollBack(
  deps: RolloutDeps,
  applied: Applied,
  cause: unknown,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<never> {
  const evidence = cause instanceof WaitError ? cause.evidence : []
  const why = errorMessage(cause)
  const fail = (message: string, outcome: RolloutOutcome, found: RolloutFound = {}) => {
    throw new RolloutError(message, outcome, evidence, found)
  }
  const gone = (detail: string) =>
    fail(`${why}; ${describe(applied)} ${detail}: nothing is rolled back, and nothing re-created`, 'gone')
  if (cause instanceof WaitError && GONE.has(cause.reason)) return gone('is no longer the object this run applied')
  let current: KubeObject | undefined
  try {
    current = await deps.kube.get(applied.kind, applied.namespace, applied.name, options.signal)
  } catch (err) {
    return fail(`${why}; could not read ${describe(applied)} to roll it back: ${errorMessage(err)}`, 'rollback-failed')
  }
  if (!current) return gone('was deleted')
  if (current.metadata?.uid !== applied.object.metadata?.uid) return gone('was deleted and created again')
  const failedRevision = applied.expectation.standard ? undefined : awaitedRevision(current, applied.expectation)
  if (!applied.previous) {
    return fail(
      `${why}; ${describe(applied)} was created by this run and is left in place for inspection (remove it with action: delete)`,
      'left-for-inspection',
      { failedRevision },
    )
  }
  if (!applied.changed) {
    return fail(`${why}; the apply changed nothing, so there is nothing to roll back`, 'not-rolled-back', {
      serving: servingNow(servingStatus(current)),
      failedRevision,
    })
  }
  const plan = planRollback(applied, current)
  if (plan.kind === 'none') {
    return fail(`${why}; not rolled back: ${plan.why}`, 'not-rolled-back', {
      serving: servingNow(servingStatus(current)),
      failedRevision,
    })
  }
  deps.log.warning(why)
  deps.log.info(`rolling back ${describe(applied)}: ${plan.says}`)
  const what = `rollback of ${describe(applied)}`
  try {
    // Standard mode: the Deployment's generation of the failed update, which the rollback moves on.
    const standard =
      plan.kind === 'respec' &&
      applied.expectation.standard &&
      (await deploymentGeneration(deps, applied.namespace, applied.name, options.signal))
    const { object: restored, previous: failed } = await deps.kube.apply(plan.body, {
      current: { object: current },
      force: false,
      signal: options.signal,
    })
    let serving: ServingStatus
    if (plan.kind === 'traffic') {
      const generation = restored.metadata?.generation ?? 0
      const result = await waitFor(
        {
          list: (signal) => deps.kube.list(applied.kind, applied.namespace, applied.name, signal),
          watch: (rv, onEvent, signal) =>
            deps.kube.watch(applied.kind, applied.namespace, applied.name, rv, onEvent, signal),
        },
        (o) => verdict(trafficSwitched(o, plan.targets, generation)),
        { ...options, what, clock: deps.clock, log: deps.log },
      )
      serving = servingStatus(result.object!)
    } else {
      const expect = expectationFor(failed, restored, standard || undefined)
      serving = (await waitObject(deps, { ...applied, object: restored }, expect, { ...options, what })).serving
    }
    const now = servingNow(serving)
    return fail(
      `${why}; rolled back: ${plan.says}${now.revision ? `; revision ${now.revision} serves` : ''}` +
        (failedRevision ? `; the failed revision ${failedRevision} is left unrouted` : ''),
      'rolled-back',
      { serving: now, failedRevision },
    )
  } catch (err) {
    if (err instanceof RolloutError) throw err
    if (err instanceof KubeApiError && err.status === 409 && /uid/i.test(err.message)) {
      return gone('was deleted during the rollback')
    }
    const after = await deps.kube.get(applied.kind, applied.namespace, applied.name).catch(() => current)
    return fail(`${why}; the rollback failed: ${errorMessage(err)}`, 'rollback-failed', {
      serving: servingNow(after && servingStatus(after)),
      failedRevision,
    })
  }
}

/** An object as an apply body: the fields the action applied to it, nothing server-owned. */
export function restoreManifest(previous: KubeObject): KubeObject {
  const meta = previous.metadata ?? {}
  const identity = { name: meta.name, namespace: meta.namespace }
  const owned = appliedFields(previous, FIELD_MANAGER)
  if (owned) {
    // Only what the action applied: webhook- and controller-set fields stay with their owners.
    const projected = projectFields(previous, owned) as KubeObject
    const metadata = { ...(projected.metadata ?? {}), ...identity }
    return { apiVersion: previous.apiVersion, kind: previous.kind, metadata, spec: projected.spec } as KubeObject
  }
  const metadata: Record<string, unknown> = { ...identity }
  if (meta.labels) metadata['labels'] = meta.labels
  if (meta.annotations) metadata['annotations'] = meta.annotations
  return { apiVersion: previous.apiVersion, kind: previous.kind, metadata, spec: previous.spec } as KubeObject
}

function modelOf(obj: KubeObject): string | undefined {
  const a = obj.metadata?.annotations ?? {}
  const name = a['mlflow-k8s-deploy/model-name']
  const version = a['mlflow-k8s-deploy/model-version']
  if (name && version) return `model ${name} version ${version}`
  return a['mlflow-k8s-deploy/model-uri'] ? `model ${a['mlflow-k8s-deploy/model-uri']}` : undefined
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    isPlainObject(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  )
}

export { describe }
