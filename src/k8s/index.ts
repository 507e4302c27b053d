// The cluster side of the pipeline, as one facade returning plain data: apply → wait for the new
// generation → verify it while its rollout is watched, with a rollback when an update fails, and
// delete. Built once in the composition root from the kubeconfig inputs.
import { systemClock, type Clock } from '../util/clock.js'
import { DeployError, InputError } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import {
  INFERENCE_SERVICE,
  KNATIVE_SERVICE,
  Kube,
  KubeConfigTransport,
  SECRET,
  SERVICE_ACCOUNT,
  describe,
  servingKindOf,
} from './kube.js'
import { loadKubeconfig, type KubeconfigEnv, type KubeconfigSource } from './kubeconfig.js'
import { isInferenceService, type KubeObject } from './readiness.js'
import { diffObject, type ObjectDiff } from './diff.js'
import {
  applyManifest,
  rolledOutRevision,
  stableRevision,
  withTraffic,
  type Applied,
  type RolloutDeps,
  type TrafficOptions,
} from './rollout.js'
import {
  awaitRollout,
  candidateUrl,
  objectStream,
  watchCandidate,
  type Ready,
  type RolloutWaitOptions,
} from './rollout-watch.js'
import { formatTargets, rollBack, waitForTraffic } from './rollback.js'
import { waitFor } from './wait.js'

export type { Applied } from './rollout.js'
export type { Ready, RolloutWaitOptions } from './rollout-watch.js'
export type { ObjectDiff } from './diff.js'
export { RolloutError } from './rollback.js'

export interface ServingApplyOptions {
  /** Take over an existing object that this action did not create (label app.kubernetes.io/managed-by). */
  readonly takeOver?: boolean
  readonly trafficPercent?: number
  readonly tag?: string
  /** Knative's progress deadline for the new revision (see withProgressDeadline). */
  readonly progressDeadlineS?: number
  /** Stage the new revision at 0 % when a parked revision would take its traffic (see parkedRevision). */
  readonly stage?: boolean
  readonly signal?: AbortSignal
}

export interface Deployment extends Ready {
  readonly kind: 'Service' | 'InferenceService'
  readonly namespace: string
  readonly name: string
  /** True when this run created the object. */
  readonly created: boolean
  /** False when the apply changed nothing. */
  readonly changed: boolean
  readonly generation: number
  /** Needed to roll back after a failed smoke test. */
  readonly applied: Applied
}

/** An object the serving pods need, named by an input: the plan checks that it exists. */
export interface PodReference {
  readonly kind: 'Secret' | 'ServiceAccount'
  readonly name: string
  /** The input naming it, for the error. */
  readonly input: string
}

/** What the cluster says of a manifest without changing anything. */
export interface ClusterPlan {
  /** "Service deploy/wine" */
  readonly what: string
  readonly diff: ObjectDiff
  /** The server's answer to the dry-run apply. */
  readonly result: KubeObject
  /** Problems that do not stop a deploy (e.g. events cannot be read for diagnostics). */
  readonly warnings: readonly string[]
}

export class ServingCluster {
  private readonly deps: RolloutDeps

  constructor(
    readonly kube: Kube,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.deps = { kube, log, clock }
  }

  /** Connects with the kubeconfig inputs (content or path), KUBECONFIG, or in-cluster. */
  static connect(source: KubeconfigSource, log: Logger, options: { clock?: Clock; env?: KubeconfigEnv } = {}) {
    const loaded = loadKubeconfig(source, options.env)
    log.info(`cluster ${loaded.server}, context ${loaded.context} (from ${loaded.origin})`)
    return new ServingCluster(new Kube(new KubeConfigTransport(loaded.config), log), log, options.clock)
  }

  /** Server-side apply; reads the previous object first (for the wait and a rollback). */
  async apply(manifest: KubeObject, options: ServingApplyOptions = {}): Promise<Applied> {
    const applied = await applyManifest(this.deps, manifest, options)
    this.log.info(
      `${applied.created ? 'created' : applied.changed ? 'updated' : 'unchanged'} ${describe(applied)} ` +
        `(generation ${applied.expectation.generation}${applied.expectation.newRevision ? ', new revision expected' : ''})`,
    )
    return applied
  }

  /**
   * Everything an apply would meet, checked without changing anything: the identity's verbs on the
   * kind (SelfSubjectAccessReview), then a server-side apply with dryRun=All (schema, admission
   * webhooks, quotas, the ownership rule). Returns what the apply would change.
   */
  async plan(
    manifest: KubeObject,
    options: ServingApplyOptions & { verbs: readonly string[]; references?: readonly PodReference[] },
  ): Promise<ClusterPlan> {
    const kind = servingKindOf(manifest)
    const { namespace, name } = manifest.metadata as { namespace: string; name: string }
    const what = describe({ kind, namespace, name })
    await this.kube.ensureInstalled(kind, options.signal)
    const denied = await this.kube.deniedVerbs(kind, namespace, options.verbs, options.signal)
    if (denied.length > 0) {
      throw new DeployError(
        `the cluster identity may not ${denied.join(', ')} ${kind.plural}.${kind.group} in namespace ${namespace}; ` +
          `a deploy needs ${options.verbs.join(', ')}: grant them with a Role and RoleBinding`,
      )
    }
    // What the wait reads besides the object: without it a deploy still works, with less to say.
    const optional = [
      { plural: 'events', without: 'a failed rollout will show no events' },
      ...(kind === KNATIVE_SERVICE
        ? [
            {
              plural: 'pods',
              without:
                "an image that cannot be pulled or a crash loop is reported only at Knative's progress deadline (600 s by default)",
            },
          ]
        : []),
    ]
    const deniedOptional = await Promise.all(
      optional.map(({ plural }) => this.kube.deniedVerbs({ group: '', plural }, namespace, ['list'], options.signal)),
    )
    const warnings = optional
      .filter((_, i) => deniedOptional[i]!.length > 0)
      .map(({ plural, without }) => `the cluster identity may not list ${plural} in ${namespace}: ${without}`)
    warnings.push(...(await this.checkReferences(namespace, options.references ?? [], options.signal)))
    const dry = await applyManifest(this.deps, manifest, { ...options, dryRun: true })
    const desired = withTraffic(manifest, options, dry.previous)
    return { what, diff: diffObject(dry.previous, desired, dry.object), result: dry.object, warnings }
  }

  /**
   * The pull secrets and service account exist (else pods never start: FailedCreate, a refused
   * pull). What the identity may not read is a warning; a missing object fails naming its input.
   */
  private async checkReferences(
    namespace: string,
    references: readonly PodReference[],
    signal?: AbortSignal,
  ): Promise<string[]> {
    const kinds = { Secret: SECRET, ServiceAccount: SERVICE_ACCOUNT }
    const used = [...new Set(references.map((r) => r.kind))]
    const denied = await Promise.all(
      used.map(async (k) => (await this.kube.deniedVerbs(kinds[k], namespace, ['get'], signal)).length > 0),
    )
    const unreadable = new Set(used.filter((_, i) => denied[i]))
    const problems = await Promise.all(
      references
        .filter((r) => !unreadable.has(r.kind))
        .map(async (r) =>
          referenceProblem(r, namespace, await this.kube.read(kinds[r.kind], namespace, r.name, signal)),
        ),
    )
    const problem = problems.find((p) => p !== undefined)
    if (problem) throw problem
    return [...unreadable].map((k) => {
      const inputs = [...new Set(references.filter((r) => r.kind === k).map((r) => r.input))].join(', ')
      return `the cluster identity may not get ${kinds[k].plural} in ${namespace}: ${inputs} not checked before the deploy`
    })
  }

  /** Waits for the applied generation; on failure rolls an update back and throws RolloutError. */
  async waitReady(applied: Applied, options: RolloutWaitOptions): Promise<Deployment> {
    let ready: Ready
    try {
      ready = await awaitRollout(this.deps, applied, options)
    } catch (err) {
      if (options.signal?.aborted) throw err
      return rollBack(this.deps, applied, err, {
        timeoutMs: options.rollbackMs?.() ?? options.timeoutMs,
        signal: options.signal,
      })
    }
    this.log.info(
      `${describe(applied)} is ready after ${Math.round(ready.waitedMs)} ms: revision ${ready.revision ?? '?'} at ${ready.url ?? '(no URL)'}`,
    )
    return deployment(applied, ready)
  }

  /**
   * Runs `check` against the new revision while watching its rollout: when its controller or pods
   * report the revision failed, `check`'s signal aborts at once and the watch's finding is the
   * failure. A failed check after an update rolls back (RolloutError says so); `rollBack: false`
   * leaves the revision as it is.
   */
  async verify<T>(
    deployed: Deployment,
    check: (signal: AbortSignal) => Promise<T>,
    options: RolloutWaitOptions & { rollBack?: boolean },
  ): Promise<T> {
    const stop = new AbortController()
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
    let failure: { reason: string; message: string } | undefined
    const watching = watchCandidate(this.deps, deployed.applied, { waitWindowMs: options.waitWindowMs, signal }).then(
      (found) => {
        failure = found
        if (found) stop.abort(new DeployError(found.message))
      },
    )
    try {
      return await check(signal)
    } catch (err) {
      if (options.signal?.aborted) throw err
      const cause = failure ? new DeployError(`stopped: ${failure.message}`) : err
      if (options.rollBack === false) throw cause
      return rollBack(this.deps, deployed.applied, cause, {
        timeoutMs: options.rollbackMs?.() ?? options.timeoutMs,
        signal: options.signal,
      })
    } finally {
      stop.abort()
      await watching
    }
  }

  /**
   * After a staged rollout (Applied.final) is verified: applies the traffic asked for and waits
   * until the status routes it and the route is ready. Until then the verified revision had 0 %.
   */
  async shiftTraffic(
    deployed: Deployment,
    manifest: KubeObject,
    options: ServingApplyOptions & { timeoutMs: number },
  ): Promise<Deployment> {
    const final: TrafficOptions = deployed.applied.final ?? {}
    const revision = deployed.revision
    if (!revision) throw new DeployError(`${describe(deployed.applied)} reports no ready revision to send traffic to`)
    const applied = await applyManifest(this.deps, manifest, { ...options, ...final })
    const staged = applied.previous!
    // As withTraffic routes it: a tag alone keeps the revision at 0 %.
    const percent = final.trafficPercent ?? (final.tag ? 0 : 100)
    const stable = isInferenceService(staged) ? rolledOutRevision(staged) : stableRevision(staged)
    const targets =
      percent >= 100 || !stable
        ? [{ revision, percent: 100 }]
        : [
            { revision, percent },
            { revision: stable, percent: 100 - percent },
          ]
    this.log.info(`${describe(applied)}: moving traffic to ${formatTargets(targets)}`)
    const generation = applied.object.metadata?.generation ?? 0
    const { serving, elapsedMs } = await waitForTraffic(this.deps, applied, targets, generation, {
      ...options,
      what: `traffic of ${describe(applied)}`,
    })
    return deployment(applied, {
      url: serving.url,
      smokeUrl: candidateUrl(this.deps, applied, serving),
      revision,
      previousRevision: deployed.previousRevision,
      traffic: serving.traffic,
      waitedMs: deployed.waitedMs + elapsedMs,
    })
  }

  /** Objects of the target's kind in a namespace matching a label selector. */
  list(target: 'knative' | 'kserve', namespace: string, labelSelector: string, signal?: AbortSignal) {
    return this.kube.listLabelled(
      target === 'kserve' ? INFERENCE_SERVICE : KNATIVE_SERVICE,
      namespace,
      labelSelector,
      signal,
    )
  }

  /** Deletes what the action created and waits until it is gone. Idempotent. */
  async remove(
    target: { target: 'knative' | 'kserve'; namespace: string; name: string },
    options: { timeoutMs: number; takeOver?: boolean; signal?: AbortSignal; uid?: string },
  ): Promise<{ removed: boolean; waitedMs: number }> {
    const kind = target.target === 'kserve' ? INFERENCE_SERVICE : KNATIVE_SERVICE
    const { namespace, name } = target
    const outcome = await this.kube.delete(kind, namespace, name, options)
    if (outcome === 'absent') {
      this.log.info(`${describe({ kind, namespace, name })} does not exist: nothing to delete`)
      return { removed: false, waitedMs: 0 }
    }
    // Finalizers (KServe has one) keep the object a while: wait until it is really gone.
    const result = await waitFor(
      objectStream(this.kube, { kind, namespace, name }),
      // Gone means the deleted uid is gone: a same-named successor does not keep the wait going.
      (o) =>
        o && o.metadata?.uid === outcome.deleted
          ? { state: 'pending', detail: 'deletion in progress' }
          : { state: 'done' },
      { ...options, clock: this.clock, log: this.log, what: `deletion of ${describe({ kind, namespace, name })}` },
    )
    this.log.info(`deleted ${describe({ kind, namespace, name })}`)
    return { removed: true, waitedMs: result.elapsedMs }
  }
}

// The Secret types the kubelet reads registry credentials from; it skips others without a word.
const PULL_SECRET_TYPES = ['kubernetes.io/dockerconfigjson', 'kubernetes.io/dockercfg']

function referenceProblem(r: PodReference, namespace: string, found: KubeObject | undefined): InputError | undefined {
  if (!found) {
    const create =
      r.kind === 'Secret'
        ? `kubectl create secret docker-registry ${r.name} --docker-server=… -n ${namespace}`
        : `kubectl create serviceaccount ${r.name} -n ${namespace}`
    return new InputError(
      r.input,
      `${r.kind} "${r.name}" does not exist in namespace ${namespace}; create it (${create}) or correct the name`,
    )
  }
  const type = (found as { type?: unknown }).type
  if (r.kind === 'Secret' && !PULL_SECRET_TYPES.includes(String(type))) {
    return new InputError(
      r.input,
      `Secret "${r.name}" in ${namespace} is of type ${String(type)}; the kubelet pulls only with kubernetes.io/dockerconfigjson Secrets (kubectl create secret docker-registry)`,
    )
  }
  return undefined
}

function deployment(applied: Applied, ready: Ready): Deployment {
  return {
    ...ready,
    kind: applied.kind.kind as Deployment['kind'],
    namespace: applied.namespace,
    name: applied.name,
    created: applied.created,
    changed: applied.changed,
    generation: applied.expectation.generation,
    applied,
  }
}
