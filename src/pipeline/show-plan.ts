import { planBody } from '../github/comment.js'
import { bestEffort, writeComment } from '../github/surfaces.js'
import { formatDiff } from '../k8s/diff.js'
import type { ClusterPlan } from '../k8s/index.js'
import type { Stage, StageContext } from './context.js'
import type { ImagePlanResult } from './plan-image.js'

/**
 * `action: plan`, after every check passed: what a deploy would do, as the `plan` output, in the
 * job summary, and in a sticky comment on the pull request the run is for.
 */
export const showPlan: Stage<ImagePlanResult & { clusterPlan: ClusterPlan }> = async (
  ctx,
  { plan: image, clusterPlan },
) => {
  const { inputs, services, report, log, signal } = ctx
  const lines = [imageLine(ctx, image)]
  lines.push(...formatDiff(clusterPlan.what, clusterPlan.diff))
  for (const warning of clusterPlan.warnings) lines.push(`warning: ${warning}`)
  const plan = lines.join('\n')
  report.set('plan', plan)
  report.plan = plan
  log.info(plan)

  const pr = inputs.github.comment ? (inputs.preview.prNumber ?? services.run.event.prNumber) : undefined
  const github = pr === undefined ? undefined : services.github()
  let comment = ''
  if (pr !== undefined && github) {
    const body = planBody({
      name: inputs.cluster.name,
      namespace: inputs.cluster.namespace,
      plan,
      runUrl: services.run.runUrl,
    })
    comment = await bestEffort(log, 'PR comment', () =>
      writeComment(github, pr, `plan-${inputs.cluster.name}`, body, { create: true, signal }),
    )
  }
  return { decision: [lines[0], lines[1], comment].filter(Boolean).join('; ') }
}

function imageLine({ inputs }: StageContext, plan: ImagePlanResult['plan']): string {
  if (inputs.cluster.serving === 'mlflow-runtime')
    return "image: none (KServe's MLflow runtime serves the model from storage)"
  if (!plan) return 'image: not planned'
  return plan.decision === 'hit'
    ? `image: cache hit ${plan.image} (build skipped)`
    : `image: build ${plan.ref} (${plan.reason})`
}
