// KServe Standard mode (called RawDeployment before KServe 0.16): the predictor is a plain
// Deployment + Service, with no revisions. Pure decisions over what the cluster shows:
// - which mode an InferenceService runs in (KServe's own order: the mode recorded in its status,
//   then the annotation, then `deploy.defaultDeploymentMode` of `inferenceservice-config`);
// - whether an update is served by the new pods: the predictor Deployment's rollout
//   (observedGeneration, updated/available replicas, no old replicas left), the isvc's status
//   (it copies the Deployment's observedGeneration, and Ready), and the new pods' container states
//   (KServe keeps a pull failure Pending; the pods say ImagePullBackOff at once). KServe's model
//   load states are not used here: it takes them from the first predictor pod it lists, which
//   during and after a rollout may be an old or a terminating one.
import { isPlainObject } from '../util/yaml.js'
import { podFailure } from './pods.js'
import {
  condition,
  describeCondition,
  kserveFailure,
  failureKey,
  type Expectation,
  type KubeObject,
  type Readiness,
} from './readiness.js'

export const DEPLOYMENT_MODE_ANNOTATION = 'serving.kserve.io/deploymentMode'
export type DeploymentMode = 'Standard' | 'Knative' | 'ModelMesh'

/** KServe's ParseDeploymentMode: the legacy names map to the current ones; anything else is unknown. */
export function normalizeMode(value: unknown): DeploymentMode | undefined {
  switch (value) {
    case 'Standard':
    case 'RawDeployment':
      return 'Standard'
    case 'Knative':
    case 'Serverless':
      return 'Knative'
    case 'ModelMesh':
      return 'ModelMesh'
    default:
      return undefined
  }
}

/** `deploy.defaultDeploymentMode` from the `inferenceservice-config` ConfigMap (a JSON string). */
export function configDefaultMode(configMap: KubeObject | undefined): DeploymentMode | undefined {
  const data = (configMap as { data?: Record<string, unknown> } | undefined)?.data
  if (typeof data?.['deploy'] !== 'string') return undefined
  try {
    const deploy: unknown = JSON.parse(data['deploy'])
    return isPlainObject(deploy) ? normalizeMode(deploy['defaultDeploymentMode']) : undefined
  } catch {
    return undefined
  }
}

/**
 * The mode KServe runs the object in (its GetDeploymentMode): the one recorded in the status of
 * the existing object wins (KServe refuses to change it), then the annotation, then the cluster's
 * default. With none of them known, KServe's shipped default (Serverless, i.e. Knative).
 */
export function deploymentModeOf(
  existing: KubeObject | undefined,
  manifest: KubeObject,
  clusterDefault: DeploymentMode | undefined,
): DeploymentMode {
  return (
    normalizeMode(existing?.status?.['deploymentMode']) ??
    normalizeMode(manifest.metadata?.annotations?.[DEPLOYMENT_MODE_ANNOTATION]) ??
    clusterDefault ??
    'Knative'
  )
}

/** The predictor Deployment's (and Service's) name. */
export function predictorName(isvcName: string): string {
  return `${isvcName}-predictor`
}

/** Everything the Standard-mode verdict looks at, read together. */
export interface PredictorSnapshot {
  readonly isvc: KubeObject
  readonly deployment: KubeObject | undefined
  readonly replicaSets: readonly KubeObject[]
  readonly pods: readonly KubeObject[]
}

const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision'

/** The ReplicaSet of the Deployment's current template (the Deployment controller's own marker). */
export function currentReplicaSet(snapshot: PredictorSnapshot): KubeObject | undefined {
  const revision = snapshot.deployment?.metadata?.annotations?.[REVISION_ANNOTATION]
  if (!revision) return undefined
  return snapshot.replicaSets.find((rs) => rs.metadata?.annotations?.[REVISION_ANNOTATION] === revision)
}

/** The pods of a ReplicaSet (by owner reference). */
export function podsOf(rs: KubeObject | undefined, pods: readonly KubeObject[]): KubeObject[] {
  if (!rs?.metadata?.uid) return []
  return pods.filter((p) =>
    ((p.metadata?.['ownerReferences'] as { uid?: string }[] | undefined) ?? []).some((o) => o.uid === rs.metadata!.uid),
  )
}

/** Decides a Standard-mode rollout from a snapshot (see the header). */
export function standardReadiness(snapshot: PredictorSnapshot | undefined, expect: Expectation): Readiness {
  if (!snapshot) return { state: 'failed', reason: 'Deleted', message: 'the object was deleted while waiting for it' }
  const { isvc, deployment } = snapshot
  const failure = kserveFailure(isvc, { loadFailures: false })
  if (!deployment) {
    if (failure) return { state: 'failed', ...failure }
    return { state: 'pending', detail: `waiting for KServe to create Deployment ${predictorName(name(isvc))}` }
  }
  const generation = num(deployment.metadata?.generation) ?? 0
  const before = expect.standard?.previousDeploymentGeneration
  // Until KServe has written the new predictor into the Deployment, everything describes the old one.
  const stale = expect.newRevision && before !== undefined && generation <= before
  if (failure && !(stale && failureKey(isvc) === expect.staleFailure)) return { state: 'failed', ...failure }
  if (stale) {
    return {
      state: 'pending',
      detail: `waiting for KServe to update Deployment ${name(deployment)} (still at generation ${generation})`,
    }
  }
  const status = deployment.status ?? {}
  const observed = num(status['observedGeneration']) ?? 0
  if (observed < generation) {
    return {
      state: 'pending',
      detail: `Deployment ${name(deployment)} has not observed generation ${generation} yet (observed ${observed})`,
    }
  }
  const rs = currentReplicaSet(snapshot)
  const pods = podFailure(podsOf(rs, snapshot.pods))
  if (pods) return { state: 'failed', ...pods }
  const progressing = condition(deployment, 'Progressing')
  if (progressing?.status === 'False') {
    return {
      state: 'failed',
      reason: progressing.reason ?? 'ProgressFailed',
      message: progressing.message ?? '',
    }
  }
  const want = num(deployment.spec?.['replicas']) ?? 1
  const updated = num(status['updatedReplicas']) ?? 0
  const total = num(status['replicas']) ?? 0
  const available = num(status['availableReplicas']) ?? 0
  if (updated < want) return { state: 'pending', detail: `${updated} of ${want} new pods created` }
  if (total > updated) return { state: 'pending', detail: `${total - updated} old pods still running` }
  if (available < want) return { state: 'pending', detail: `${available} of ${want} new pods available` }
  // The isvc copies the Deployment's observedGeneration when it reconciles it: older means its
  // conditions still describe an earlier Deployment.
  const reported = num(isvc.status?.['observedGeneration']) ?? 0
  if (reported < generation) {
    return {
      state: 'pending',
      detail: `waiting for KServe to report Deployment generation ${generation} (reported ${reported})`,
    }
  }
  const ready = condition(isvc, 'Ready')
  if (ready?.status !== 'True') return { state: 'pending', detail: describeCondition(ready, 'Ready') }
  return {
    state: 'ready',
    serving: { url: str(isvc.status?.['url']), revision: rs?.metadata?.name, traffic: [] },
  }
}

/** Where the host reaches the predictor: its Service's ClusterIP (kube-proxy), or a ready pod. */
export function predictorAddress(service: KubeObject | undefined, pods: readonly KubeObject[]): string | undefined {
  const spec = service?.spec ?? {}
  const ports = (Array.isArray(spec['ports']) ? spec['ports'] : []) as { port?: number }[]
  const ip = str(spec['clusterIP'])
  if (ip && ip !== 'None' && ports[0]?.port) return `http://${ip}:${ports[0].port}`
  const pod = pods.find((p) => condition(p, 'Ready')?.status === 'True' && str(p.status?.['podIP']))
  return pod ? `http://${String(pod.status!['podIP'])}:8080` : undefined
}

function name(o: KubeObject): string {
  return o.metadata?.name ?? '?'
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}
