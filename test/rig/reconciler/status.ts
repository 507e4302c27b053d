// Pure status computation for the rig reconciler: given an object and what the reconciler knows
// about its revisions, what would the real Knative / KServe controllers write into `status`?
// No I/O here, so the rules can be read (and unit-tested) on their own.
import { createHash } from 'node:crypto'

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
export type Obj = { [k: string]: Json }

export type RevisionState = 'starting' | 'ready' | 'failed' | 'stopped'
export interface RevisionView {
  name: string
  state: RevisionState
  url?: string // http://127.0.0.1:<port> while running
  /** revision-level failure, e.g. 'Unable to fetch image "x": ...' or 'Container failed with: ...' */
  message?: string
  reason?: string // ContainerMissing | ExitCode<N> | ProgressDeadlineExceeded | InvalidSpec
  exitCode?: number
  failedAt?: string
}
export interface Condition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  reason?: string
  message?: string
  severity?: string
  lastTransitionTime?: string
}
export interface TrafficTarget {
  revisionName?: string
  latestRevision?: boolean
  percent?: number
  tag?: string
  url?: string
  configurationName?: string
}

// --- small helpers ---------------------------------------------------------------------------

/** JSON with sorted keys: equal values give equal strings. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}
export function hashOf(v: unknown): string {
  return createHash('sha256').update(stableJson(v)).digest('hex').slice(0, 16)
}

/** Knative: any change under spec.template makes a new revision. */
export function knativeTemplateHash(svc: Obj): string {
  return hashOf((svc.spec as Obj | undefined)?.template ?? null)
}
/** KServe: the predictor minus what only changes routing (canary percent). */
export function kserveTemplateHash(isvc: Obj): string {
  const { canaryTrafficPercent: _ignored, ...predictor } = ((isvc.spec as Obj | undefined)?.predictor ?? {}) as Obj
  return hashOf(predictor)
}

/** `<prefix>-00001` style names, as Knative generates them. */
export function revisionName(prefix: string, n: number): string {
  return `${prefix}-${String(n).padStart(5, '0')}`
}
export function revisionNumber(name: string | undefined): number {
  const m = /-(\d{5})$/.exec(name ?? '')
  return m ? Number(m[1]) : 0
}

/** Keep lastTransitionTime of conditions whose status did not change. */
export function withTransitionTimes(prev: Condition[] | undefined, next: Condition[], now: string): Condition[] {
  return next.map((c) => {
    const old = prev?.find((p) => p.type === c.type)
    return {
      ...c,
      lastTransitionTime: old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : now,
    }
  })
}

/** Merge patch turning `current` into `desired`: keys gone from desired become null. */
export function mergePatch(current: Json | undefined, desired: Json): Json {
  if (!isPlain(current) || !isPlain(desired)) return desired
  const patch: Obj = {}
  for (const k of Object.keys(current)) if (!(k in desired)) patch[k] = null
  for (const [k, v] of Object.entries(desired)) {
    if (stableJson(current[k]) !== stableJson(v)) patch[k] = mergePatch(current[k], v)
  }
  return patch
}
function isPlain(v: unknown): v is Obj {
  return !!v && typeof v === 'object' && !Array.isArray(v)
}

/** Ready from its dependents, the way knative.dev/pkg's ConditionSet does it. */
function topLevel(type: string, deps: Condition[]): Condition {
  const failed = deps.find((c) => c.status === 'False')
  if (failed) return { type, status: 'False', reason: failed.reason, message: failed.message }
  const unknown = deps.find((c) => c.status === 'Unknown')
  if (unknown) return { type, status: 'Unknown', reason: unknown.reason, message: unknown.message }
  return { type, status: 'True' }
}

function failedMessage(rev: RevisionView): string {
  return `Revision "${rev.name}" failed with message: ${rev.message ?? 'unknown error'}.`
}

// --- routing ----------------------------------------------------------------------------------

export interface RouteResult {
  traffic?: TrafficTarget[]
  url?: string
  condition: Condition
  /** revisions that traffic points at: their containers must keep running */
  referenced: string[]
}

/**
 * Resolve spec.traffic (default: 100% to the latest ready revision) against the known revisions.
 * `latestRevision: true` follows the latest READY revision; tagged targets get their revision's
 * URL; the route URL is the URL of the revision with the largest percent.
 */
export function resolveTraffic(
  configName: string,
  spec: TrafficTarget[] | undefined,
  revisions: RevisionView[],
  latestReady: string | undefined,
  latestCreatedFailed: boolean,
): RouteResult {
  const targets = spec && spec.length ? spec : [{ latestRevision: true, percent: 100 }]
  const byName = new Map(revisions.map((r) => [r.name, r]))
  const resolved: TrafficTarget[] = []
  const referenced: string[] = []
  for (const t of targets) {
    const latest = t.latestRevision === true || (!t.revisionName && t.latestRevision !== false)
    const name = latest ? latestReady : t.revisionName
    if (!name) {
      return {
        referenced,
        condition: latestCreatedFailed
          ? {
              type: 'RoutesReady',
              status: 'False',
              reason: 'RevisionMissing',
              message: `Configuration "${configName}" does not have any ready Revision.`,
            }
          : {
              type: 'RoutesReady',
              status: 'Unknown',
              reason: 'RevisionMissing',
              message: `Configuration "${configName}" is waiting for a Revision to become ready.`,
            },
      }
    }
    const rev = byName.get(name)
    referenced.push(name)
    if (!rev || rev.state === 'failed') {
      return {
        referenced,
        condition: {
          type: 'RoutesReady',
          status: 'False',
          reason: 'RevisionMissing',
          message: rev
            ? `Revision "${name}" referenced in traffic failed.`
            : `Revision "${name}" referenced in traffic not found.`,
        },
      }
    }
    if (rev.state !== 'ready' || !rev.url) {
      return {
        referenced,
        condition: {
          type: 'RoutesReady',
          status: 'Unknown',
          reason: 'RevisionMissing',
          message: `Revision "${name}" referenced in traffic is not ready yet.`,
        },
      }
    }
    const out: TrafficTarget = { revisionName: name, latestRevision: latest, percent: t.percent ?? 0 }
    if (t.tag) Object.assign(out, { tag: t.tag, url: rev.url })
    resolved.push(out)
  }
  let main = resolved[0]
  for (const t of resolved) if ((t.percent ?? 0) > (main?.percent ?? 0)) main = t
  const url = main && byName.get(main.revisionName ?? '')?.url
  return { traffic: resolved, url, referenced, condition: { type: 'RoutesReady', status: 'True' } }
}

// --- Knative Service -----------------------------------------------------------------------

export interface KnativeView {
  generation: number
  revisions: RevisionView[] // oldest first; the last one is the latest created
  latestReady?: string
}

/** Status a Knative Service gets, conditions without lastTransitionTime. */
export function knativeStatus(svc: Obj, view: KnativeView): { status: Obj; referenced: string[] } {
  const name = String((svc.metadata as Obj).name)
  const latest = view.revisions.at(-1)
  const config: Condition =
    latest?.state === 'ready'
      ? { type: 'ConfigurationsReady', status: 'True' }
      : latest?.state === 'failed'
        ? { type: 'ConfigurationsReady', status: 'False', reason: 'RevisionFailed', message: failedMessage(latest) }
        : {
            type: 'ConfigurationsReady',
            status: 'Unknown',
            reason: 'Deploying',
            message: `Revision "${latest?.name}" is being deployed.`,
          }
  const route = resolveTraffic(
    name,
    (svc.spec as Obj | undefined)?.traffic as TrafficTarget[] | undefined,
    view.revisions,
    view.latestReady,
    latest?.state === 'failed',
  )
  const status: Obj = {
    observedGeneration: view.generation,
    conditions: [config, route.condition, topLevel('Ready', [config, route.condition])] as unknown as Json,
  }
  if (latest) status.latestCreatedRevisionName = latest.name
  if (view.latestReady) status.latestReadyRevisionName = view.latestReady
  if (route.traffic) status.traffic = route.traffic as unknown as Json
  if (route.url) {
    status.url = route.url
    status.address = { url: route.url }
  }
  return { status, referenced: route.referenced }
}

// --- KServe InferenceService ---------------------------------------------------------------

export interface KserveView {
  /** generation of the (simulated) child Knative Service, NOT the isvc's own generation */
  childGeneration: number
  revisions: RevisionView[]
  latestReady?: string
  latestRolledout?: string
  previousRolledout?: string
  /** set when the spec itself is unusable (no runtime, bad storageUri): no revision exists */
  invalid?: { reason: string; message: string }
}

export interface KserveResult {
  status: Obj
  referenced: string[]
  latestRolledout?: string
  previousRolledout?: string
}

/**
 * Status an InferenceService gets in Knative (Serverless) mode. Canary: with canaryTrafficPercent
 * N < 100 and a previously rolled-out revision, N% goes to the latest ready revision and the rest
 * to the rolled-out one (tag "prev"; tag "latest" only with serving.kserve.io/enable-tag-routing).
 */
export function kserveStatus(isvc: Obj, view: KserveView, now: string): KserveResult {
  const meta = isvc.metadata as Obj
  const name = String(meta.name)
  const annotations = (meta.annotations ?? {}) as Record<string, string>
  const predictorSpec = ((isvc.spec as Obj | undefined)?.predictor ?? {}) as Obj
  const latest = view.revisions.at(-1)
  const canary = typeof predictorSpec.canaryTrafficPercent === 'number' ? predictorSpec.canaryTrafficPercent : undefined
  const tagRouting = annotations['serving.kserve.io/enable-tag-routing'] === 'true'

  let traffic: TrafficTarget[] | undefined
  let latestRolledout = view.latestRolledout
  let previousRolledout = view.previousRolledout
  if (view.latestReady) {
    const split = canary !== undefined && canary < 100 && latestRolledout && latestRolledout !== view.latestReady
    if (split) {
      traffic = [
        { latestRevision: true, percent: canary, ...(tagRouting ? { tag: 'latest' } : {}) },
        { revisionName: latestRolledout, percent: 100 - canary, tag: 'prev' },
      ]
    } else {
      traffic = [{ latestRevision: true, percent: 100, ...(tagRouting ? { tag: 'latest' } : {}) }]
      if (latestRolledout !== view.latestReady) {
        previousRolledout = latestRolledout
        latestRolledout = view.latestReady
      }
    }
  }
  const route = resolveTraffic(
    `${name}-predictor`,
    traffic,
    view.revisions,
    view.latestReady,
    latest?.state === 'failed',
  )

  let predictor: Condition
  if (view.invalid) {
    predictor = { type: 'PredictorReady', status: 'False', reason: view.invalid.reason, message: view.invalid.message }
  } else if (latest?.state === 'failed') {
    predictor = { type: 'PredictorReady', status: 'False', reason: 'RevisionFailed', message: failedMessage(latest) }
  } else if (latest?.state === 'ready' && route.condition.status === 'True') {
    predictor = { type: 'PredictorReady', status: 'True' }
  } else {
    predictor = {
      type: 'PredictorReady',
      status: 'Unknown',
      reason: 'Deploying',
      message: `Revision "${latest?.name}" is being deployed.`,
    }
  }
  const predictorConfig: Condition =
    predictor.status === 'False' || latest?.state !== 'ready'
      ? { ...predictor, type: 'PredictorConfigurationReady' }
      : { type: 'PredictorConfigurationReady', status: 'True' }
  const predictorRoute: Condition = { ...route.condition, type: 'PredictorRouteReady' }
  const ingress: Condition = route.url
    ? { type: 'IngressReady', status: 'True' }
    : {
        type: 'IngressReady',
        status: 'Unknown',
        reason: 'PredictorNotReady',
        message: 'Predictor has no ready revision yet.',
      }
  const conditions = [ingress, predictorConfig, predictor, predictorRoute, topLevel('Ready', [predictor, ingress])]

  const component: Obj = {}
  if (latest) component.latestCreatedRevision = latest.name
  if (view.latestReady) component.latestReadyRevision = view.latestReady
  if (latestRolledout) component.latestRolledoutRevision = latestRolledout
  if (previousRolledout) component.previousRolledoutRevision = previousRolledout
  if (route.traffic) component.traffic = route.traffic as unknown as Json
  if (route.url) {
    component.url = route.url
    component.restUrl = route.url
    component.address = { url: route.url }
  }

  const status: Obj = {
    observedGeneration: view.childGeneration,
    conditions: conditions as unknown as Json,
    components: { predictor: component },
    modelStatus: modelStatus(view, latest, route.url !== undefined, now),
    deploymentMode: annotations['serving.kserve.io/deploymentMode'] ?? 'Serverless',
  }
  if (predictorSpec.model) status.clusterServingRuntimeName = 'kserve-mlserver'
  if (route.url) {
    status.url = route.url
    status.address = { url: route.url }
  }
  return { status, referenced: route.referenced, latestRolledout, previousRolledout }
}

function modelStatus(view: KserveView, latest: RevisionView | undefined, serving: boolean, now: string): Obj {
  const active = serving ? 'Loaded' : 'Pending'
  if (view.invalid) {
    return {
      transitionStatus: 'InvalidSpec',
      states: { activeModelState: active, targetModelState: 'FailedToLoad' },
      lastFailureInfo: { reason: view.invalid.reason, message: view.invalid.message, time: now },
    }
  }
  if (latest?.state === 'failed') {
    const info: Obj = {
      location: latest.name,
      reason: 'ModelLoadFailed',
      message: latest.message ?? 'revision failed',
      modelRevisionName: latest.name,
      time: latest.failedAt ?? now,
    }
    if (latest.exitCode !== undefined) info.exitCode = latest.exitCode
    return {
      transitionStatus: 'BlockedByFailedLoad',
      states: { activeModelState: active, targetModelState: 'FailedToLoad' },
      lastFailureInfo: info,
      copies: { failedCopies: 1, totalCopies: 0 },
    }
  }
  if (latest?.state === 'ready' && latest.name === view.latestReady) {
    return {
      transitionStatus: 'UpToDate',
      states: { activeModelState: 'Loaded', targetModelState: 'Loaded' },
      copies: { failedCopies: 0, totalCopies: 1 },
    }
  }
  return { transitionStatus: 'InProgress', states: { activeModelState: active, targetModelState: 'Loading' } }
}
