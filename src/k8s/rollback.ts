// Undoing a failed update: how (planRollback, pure), doing it bounded, and saying what serves now.
// Knative and KServe's Knative mode switch traffic back to revisions that are still there and
// Ready; KServe Standard mode, which has no revisions, gets its previous spec again.
import { errorMessage, DeployError } from '../util/errors.js'
import { FIELD_MANAGER, KubeApiError, describe, type ServingKind } from './kube.js'
import { appliedFields, projectFields } from './managed-fields.js'
import {
  awaitedRevision,
  condition,
  describeCondition,
  isInferenceService,
  servingStatus,
  type KubeObject,
  type Readiness,
  type ServingStatus,
  type TrafficTarget,
} from './readiness.js'
import { isPlainObject } from '../util/yaml.js'
import { deploymentGeneration, expectationFor, rolledOutRevision, type Applied, type RolloutDeps } from './rollout.js'
import { objectStream, verdict, waitObject } from './rollout-watch.js'
import { WaitError, waitFor } from './wait.js'

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

/** Failures that mean the object this run applied is no longer there: nothing to roll back. */
const GONE = new Set(['Deleted', 'Replaced'])

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

export const formatTargets = (targets: readonly TrafficTarget[]) =>
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

/** Waits until the object's status routes `targets` and its route is ready (trafficSwitched). */
export async function waitForTraffic(
  deps: RolloutDeps,
  target: { kind: ServingKind; namespace: string; name: string },
  targets: readonly TrafficTarget[],
  generation: number,
  options: { timeoutMs: number; signal?: AbortSignal; what: string },
): Promise<{ serving: ServingStatus; elapsedMs: number }> {
  const result = await waitFor(
    objectStream(deps.kube, target),
    (o) => verdict(trafficSwitched(o, targets, generation)),
    { ...options, clock: deps.clock, log: deps.log },
  )
  return { serving: servingStatus(result.object!), elapsedMs: result.elapsedMs }
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
      serving = (await waitForTraffic(deps, applied, plan.targets, generation, { ...options, what })).serving
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
    const deleted = err instanceof WaitError && GONE.has(err.reason)
    if (deleted || (err instanceof KubeApiError && err.status === 409 && /uid/i.test(err.message))) {
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
