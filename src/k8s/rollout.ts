// Apply, wait for the new generation, and undo a failed update. The previous object is read before
// the apply; if the rollout (or the smoke test after it) fails, its spec is re-applied and awaited.
// A failed first deploy has nothing to go back to: it is left in place for inspection.
import type { Clock } from '../util/clock.js'
import { DeployError, errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { isPlainObject } from '../util/yaml.js'
import {
  CONFIG_MAP,
  DEPLOYMENT,
  FIELD_MANAGER,
  INFERENCE_SERVICE,
  KNATIVE_SERVICE,
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
  describeConditions,
  failureKey,
  isInferenceService,
  knativeRolloutReadiness,
  readiness,
  servingStatus,
  tagUrl,
  type Expectation,
  type KnativeSnapshot,
  type KubeObject,
  type Readiness,
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
import { WaitError, pollingStream, waitFor, type Verdict } from './wait.js'

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

/** The rollout failed; says whether and what was rolled back. */
export class RolloutError extends DeployError {
  constructor(
    message: string,
    readonly outcome: 'rolled-back' | 'left-for-inspection' | 'rollback-failed' | 'not-rolled-back',
    readonly evidence: readonly string[],
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
  const desired = withTraffic(manifest, options, before)
  let standard: Expectation['standard']
  if (isInferenceService(desired) && (await kserveMode(deps, before, desired, options.signal)) === 'Standard') {
    if (options.trafficPercent !== undefined) {
      throw new DeployError(
        `${describe({ kind, namespace, name })} runs in KServe's Standard (RawDeployment) mode, which has no canary: traffic-percent needs the Knative mode`,
      )
    }
    standard = await deploymentGeneration(deps, namespace, name, options.signal)
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
    tag: options.tag,
    expectation: expectationFor(previous, object, standard),
  }
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
 * Sets the traffic the user asked for. Knative: the latest revision gets `percent` (and the tag),
 * the stable revision the rest; a tag alone stages the new revision at 0 %. KServe:
 * canaryTrafficPercent. Nothing asked: no traffic block, so server-side apply drops one an earlier
 * run set and 100 % goes to the latest revision.
 */
export function withTraffic(
  manifest: KubeObject,
  options: TrafficOptions,
  previous: KubeObject | undefined,
): KubeObject {
  const { trafficPercent, tag } = options
  if (trafficPercent === undefined && tag === undefined) return manifest
  const copy = structuredClone(manifest)
  const spec = (copy.spec ??= {})
  if (isInferenceService(copy)) {
    if (tag !== undefined) throw new DeployError('traffic tags are Knative-only; KServe takes traffic-percent')
    const predictor = (isPlainObject(spec['predictor']) ? spec['predictor'] : (spec['predictor'] = {})) as Record<
      string,
      unknown
    >
    predictor['canaryTrafficPercent'] = trafficPercent
    return copy
  }
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

/** Waits for the applied generation; on failure rolls back an update (or leaves a first deploy). */
export async function waitReady(
  deps: RolloutDeps,
  applied: Applied,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<Ready> {
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
    return rollBack(deps, applied, err, options)
  }
  const { serving, address } = settled
  const previousRevision = applied.previous && servingStatus(applied.previous).revision
  return {
    url: serving.url,
    smokeUrl: (applied.tag && tagUrl(serving, applied.tag)) || serving.url,
    directUrl: address,
    revision: serving.revision,
    previousRevision,
    traffic: serving.traffic,
    waitedMs: settled.elapsedMs,
  }
}

/** The end of a successful wait: what serves, and (Standard mode) where the host reaches it. */
interface Settled {
  readonly serving: ServingStatus
  readonly elapsedMs: number
  readonly address?: string
}

const verdict = (r: Readiness): Verdict => (r.state === 'ready' ? { state: 'done' } : r)

async function waitObject(
  deps: RolloutDeps,
  target: { kind: ServingKind; namespace: string; name: string },
  expect: Expectation,
  options: { timeoutMs: number; signal?: AbortSignal; what: string },
): Promise<Settled> {
  const { kind, namespace, name } = target
  const events = async () => (await deps.kube.events(kind, namespace, name, options.signal)).map((e) => `event ${e}`)
  if (expect.standard) {
    // No revisions and no single object to watch: the isvc, its Deployment and pods, re-read.
    const result = await waitFor(
      pollingStream((signal) => readPredictor(deps.kube, namespace, name, signal), deps.clock),
      (snapshot) => verdict(standardReadiness(snapshot, expect)),
      {
        ...options,
        clock: deps.clock,
        log: deps.log,
        diagnose: async (s) => [
          ...describeConditions(s?.isvc).map((c) => `condition ${c}`),
          ...describeConditions(s?.deployment).map((c) => `condition Deployment ${c}`),
          ...[podFailure(s?.pods ?? [])].filter(Boolean).map((f) => `pod ${f!.reason}: ${f!.message}`),
          ...(await events()),
        ],
      },
    )
    const snapshot = result.object!
    const ready = standardReadiness(snapshot, expect)
    const service = await deps.kube.read(SERVICE, namespace, predictorName(name), options.signal)
    return {
      serving: ready.state === 'ready' ? ready.serving : servingStatus(snapshot.isvc),
      elapsedMs: result.elapsedMs,
      address: predictorAddress(service, podsOf(currentReplicaSet(snapshot), snapshot.pods)),
    }
  }
  if (kind === KNATIVE_SERVICE) {
    // Knative judges a revision's pods only when its progress deadline (600 s by default) expires,
    // or when the Deployment changes: a pull error or a crash loop would wait that long. The
    // new revision's pods are read with the Service, and their terminal states fail it at once.
    const result = await waitFor(
      // Read every second: Ready is noticed within a second of Knative writing it.
      pollingStream((signal) => readKnative(deps.kube, namespace, name, expect, signal), deps.clock, 1_000),
      (snapshot) => verdict(knativeRolloutReadiness(snapshot, expect)),
      {
        ...options,
        clock: deps.clock,
        log: deps.log,
        diagnose: async (s) => [
          ...describeConditions(s?.service).map((c) => `condition ${c}`),
          ...[podFailure(s?.pods ?? [])].filter(Boolean).map((f) => `pod ${f!.reason}: ${f!.message}`),
          ...(await events()),
        ],
      },
    )
    return { serving: servingStatus(result.object!.service), elapsedMs: result.elapsedMs }
  }
  const result = await waitFor(
    {
      list: (signal) => deps.kube.list(kind, namespace, name, signal),
      watch: (rv, onEvent, signal) => deps.kube.watch(kind, namespace, name, rv, onEvent, signal),
    },
    (o) => verdict(readiness(o, expect)),
    {
      ...options,
      clock: deps.clock,
      log: deps.log,
      diagnose: async (o) => [...describeConditions(o).map((c) => `condition ${c}`), ...(await events())],
    },
  )
  return { serving: servingStatus(result.object!), elapsedMs: result.elapsedMs }
}

/** The Knative Service and the pods of the revision this rollout waits for (none before it exists). */
export async function readKnative(
  kube: Kube,
  namespace: string,
  name: string,
  expect: Expectation,
  signal?: AbortSignal,
): Promise<KnativeSnapshot | undefined> {
  const service = (await kube.list(KNATIVE_SERVICE, namespace, name, signal)).object
  if (!service) return undefined
  const revision = awaitedRevision(service, expect)
  if (!revision) return { service, pods: [] }
  try {
    return { service, pods: await kube.readAll(POD, namespace, `serving.knative.dev/revision=${revision}`, signal) }
  } catch (err) {
    // Without list on pods, the rollout is judged on Knative's conditions alone (slower failures).
    if (err instanceof KubeApiError && err.status === 403) return { service, pods: [] }
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
 * Restores the spec read before the apply and waits for it; always throws a RolloutError that
 * says what happened. A first deploy is left as it is for inspection.
 */
export async function rollBack(
  deps: RolloutDeps,
  applied: Applied,
  cause: unknown,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<never> {
  const evidence = cause instanceof WaitError ? cause.evidence : []
  const why = errorMessage(cause)
  if (!applied.previous) {
    throw new RolloutError(
      `${why}; ${describe(applied)} was created by this run and is left in place for inspection (remove it with action: delete)`,
      'left-for-inspection',
      evidence,
    )
  }
  if (!applied.changed) {
    throw new RolloutError(
      `${why}; the apply changed nothing, so there is nothing to roll back`,
      'not-rolled-back',
      evidence,
    )
  }
  const previous = applied.previous
  const was = modelOf(previous)
  deps.log.warning(`${why}`)
  deps.log.info(`rolling back ${describe(applied)} to its previous spec${was ? ` (${was})` : ''}`)
  try {
    // Standard mode: the Deployment's generation of the failed update, which the rollback moves on.
    const standard =
      applied.expectation.standard &&
      (await deploymentGeneration(deps, applied.namespace, applied.name, options.signal))
    const { object: restored, previous: failed } = await deps.kube.apply(restoreManifest(previous), {
      takeOver: true,
      signal: options.signal,
    })
    const expect = expectationFor(failed, restored, standard)
    const result = await waitObject(deps, applied, expect, {
      ...options,
      what: `rollback of ${describe(applied)}`,
    })
    const revision = result.serving.revision
    throw new RolloutError(
      `${why}; rolled back to the previous spec${was ? ` (${was})` : ''}: revision ${revision ?? '?'} serves`,
      'rolled-back',
      evidence,
    )
  } catch (err) {
    if (err instanceof RolloutError) throw err
    throw new RolloutError(
      `${why}; rolling back to the previous spec also failed: ${errorMessage(err)}`,
      'rollback-failed',
      evidence,
    )
  }
}

/** The previous object as an apply body: its spec, labels and annotations, nothing server-owned. */
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
