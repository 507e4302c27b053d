import { planBody } from '../github/comment.js'
import { bestEffort, writeComment } from '../github/surfaces.js'
import { formatDiff } from '../k8s/diff.js'
import type { StageContext, StageOutcome } from './context.js'

/**
 * `action: plan`, after every check passed: what a deploy would do, as the `plan` output, in the
 * job summary, and in a sticky comment on the pull request the run is for.
 */
export async function showPlan(ctx: StageContext): Promise<StageOutcome> {
  const { inputs, services, state, report, log, signal } = ctx
  const lines = [imageLine(ctx)]
  const cluster = state.clusterPlan
  if (cluster) lines.push(...formatDiff(cluster.what, cluster.diff))
  for (const warning of cluster?.warnings ?? []) lines.push(`warning: ${warning}`)
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
  const what = cluster ? lines[1] : 'nothing to apply'
  return { decision: [lines[0], what, comment].filter(Boolean).join('; ') }
}

function imageLine({ inputs, state }: StageContext): string {
  if (inputs.cluster.serving === 'mlflow-runtime')
    return "image: none (KServe's MLflow runtime serves the model from storage)"
  const plan = state.plan
  if (!plan) return 'image: not planned'
  return plan.decision === 'hit'
    ? `image: cache hit ${plan.image ?? plan.ref} (build skipped)`
    : `image: build ${plan.ref} (${plan.reason})`
}
