import { summarizeDiff } from '../k8s/diff.js'
import type { ClusterPlan } from '../k8s/index.js'
import type { Inputs } from '../inputs.js'
import { rollbackReserveMs } from '../util/clock.js'
import type { Stage } from './context.js'
import type { RenderedManifest } from './render-manifest.js'

/**
 * Before anything is built or applied: may this identity do what the deploy will do, and does the
 * cluster accept the manifest (schema, admission webhooks, quotas, ownership)? Changes nothing.
 */
export const checkCluster: Stage<Pick<RenderedManifest, 'manifest'>, { clusterPlan: ClusterPlan }> = async (
  { inputs, services, log, signal },
  { manifest },
) => {
  const { cluster, flow, preview } = inputs
  const verbs = [
    'get',
    'create',
    'patch',
    ...(flow.wait ? ['list', 'watch'] : []),
    // A preview whose pull request closes during the deploy removes what it applied.
    ...(preview.enabled ? ['delete'] : []),
  ]
  const plan = await services.cluster().plan(manifest, {
    takeOver: cluster.takeOver,
    trafficPercent: flow.trafficPercent,
    tag: flow.tag,
    progressDeadlineS: progressDeadlineS(flow),
    verbs,
    references: [
      ...cluster.imagePullSecrets.map((name) => ({ kind: 'Secret' as const, name, input: 'image-pull-secrets' })),
      ...(cluster.serviceAccount
        ? [{ kind: 'ServiceAccount' as const, name: cluster.serviceAccount, input: 'service-account' }]
        : []),
    ],
    signal,
  })
  for (const warning of plan.warnings) log.warning(warning)
  return {
    decision: `server-side dry run accepted, ${verbs.join('/')} allowed; ${plan.what}: ${summarizeDiff(plan.diff)}`,
    clusterPlan: plan,
  }
}

/**
 * Knative's progress deadline for the new revision: the forward share of `timeout`, so the
 * controller gives up when the action would. From the inputs, not the time left: the same spec
 * gives the same template.
 */
export function progressDeadlineS(flow: Inputs['flow']): number | undefined {
  return flow.wait ? (flow.timeoutMs - rollbackReserveMs(flow.timeoutMs)) / 1000 : undefined
}
