// Waiting for an applied rollout: the object watched (Ready is seen when the controller writes it)
// and the new revision's pods re-read (their failures decide before the controller does); KServe
// Standard mode re-reads the isvc, its Deployment and pods. The same reads watch the candidate
// while the smoke test runs.
import { formatDuration } from '../util/duration.js'
import { errorMessage } from '../util/errors.js'
import type { Clock } from '../util/clock.js'
import {
  DEPLOYMENT,
  INFERENCE_SERVICE,
  POD,
  REPLICA_SET,
  SERVICE,
  KubeApiError,
  describe,
  type Kube,
  type ServingKind,
} from './kube.js'
import {
  awaitedRevision,
  candidateFailure,
  describeConditions,
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
  currentReplicaSet,
  podsOf,
  predictorAddress,
  predictorName,
  standardReadiness,
  type PredictorSnapshot,
} from './standard.js'
import { podFailure } from './pods.js'
import type { Applied, RolloutDeps } from './rollout.js'
import { WaitError, pollingStream, waitFor, type ObjectStream, type Verdict } from './wait.js'

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

export interface RolloutWaitOptions {
  /** For the wait itself. */
  readonly timeoutMs: number
  /** For a rollback after a failure, asked when it starts (what is left of the run's budget). */
  readonly rollbackMs?: () => number
  /** How long a failure the cluster may still resolve (Unschedulable) is tolerated. */
  readonly waitWindowMs?: number
  readonly signal?: AbortSignal
}

/**
 * Waits for the applied generation to serve; throws WaitError when it fails or time runs out (the
 * caller decides about a rollback).
 */
export async function awaitRollout(deps: RolloutDeps, applied: Applied, options: RolloutWaitOptions): Promise<Ready> {
  const what = `${describe(applied)} (generation ${applied.expectation.generation})`
  deps.log.info(
    `waiting up to ${Math.round(options.timeoutMs / 1000)} s for ${what} to become ready` +
      (applied.changed ? '' : ' (the apply changed nothing)'),
  )
  const { serving, address, elapsedMs } = await waitObject(deps, applied, applied.expectation, { ...options, what })
  return {
    url: serving.url,
    smokeUrl: candidateUrl(deps, applied, serving),
    directUrl: address,
    revision: serving.revision,
    previousRevision: applied.previous && servingStatus(applied.previous).revision,
    traffic: serving.traffic,
    waitedMs: elapsedMs,
  }
}

/** The URL that reaches this rollout's revision alone: its tag's, else the service's. */
export function candidateUrl(deps: RolloutDeps, applied: Applied, serving: ServingStatus): string | undefined {
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
export interface Settled {
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
      ...(await recentEvents(deps, target, options.signal)),
    ],
  })
}

/**
 * The object's events, for a failure message, read for at most 1.5 s: the read lists the whole
 * namespace (thousands of events in a busy one took 4 s on the rig), and the rollback waits for it.
 */
async function recentEvents(
  deps: RolloutDeps,
  target: { kind: ServingKind; namespace: string; name: string },
  signal?: AbortSignal,
): Promise<string[]> {
  const bounded = AbortSignal.any([AbortSignal.timeout(1_500), ...(signal ? [signal] : [])])
  try {
    const events = await deps.kube.events(target.kind, target.namespace, target.name, bounded)
    return events.map((e) => `event ${e}`)
  } catch (err) {
    if (signal?.aborted) throw err
    return [bounded.aborted ? '(events not read within 1.5 s)' : `(events not read: ${errorMessage(err)})`]
  }
}

/** One object's stream: list, then watch from the list's resourceVersion. */
export function objectStream(kube: Kube, target: { kind: ServingKind; namespace: string; name: string }): ObjectStream {
  const { kind, namespace, name } = target
  return {
    list: (signal) => kube.list(kind, namespace, name, signal),
    watch: (rv, onEvent, signal) => kube.watch(kind, namespace, name, rv, onEvent, signal),
  }
}

/** A rollout's readiness as a wait verdict. */
export const verdict = (r: Readiness): Verdict => (r.state === 'ready' ? { state: 'done' } : r)
const podLines = (pods: readonly KubeObject[]) =>
  [podFailure(pods)].filter((f) => f !== undefined).map((f) => `pod ${f.reason}: ${f.message}`)

/** Knative Services and Knative-mode InferenceServices: the object, watched, and its new revision's pods. */
function watchRevisions(deps: RolloutDeps, target: WatchedObject, expect: Expectation): Watched<RevisionSnapshot> {
  return {
    stream: revisionStream(deps, target, expect),
    judge: (s) => revisionRolloutReadiness(s, expect),
    objectOf: (s) => s.service,
    evidence: (s) => podLines(s?.pods ?? []),
  }
}

/** KServe Standard mode: no revisions and no single object to watch; the isvc, its Deployment and pods, re-read. */
function watchPredictor(deps: RolloutDeps, target: WatchedObject, expect: Expectation): Watched<PredictorSnapshot> {
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

export type WatchedObject = { kind: ServingKind; namespace: string; name: string; object?: KubeObject }

export async function waitObject(
  deps: RolloutDeps,
  target: WatchedObject,
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
  target: WatchedObject,
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
