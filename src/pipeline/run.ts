// The pipeline: which stages run for each action, in order, each timed, logged as a group and
// recorded with its decision.
import { registeredName } from '../mlflow/model-uri.js'
import type { Clock } from '../util/clock.js'
import { DeployError, errorMessage } from '../util/errors.js'
import type { Action } from '../inputs.js'
import { apply } from './apply.js'
import { cleanupPreviews } from './cleanup-previews.js'
import { buildImage } from './build-image.js'
import type { Stage, StageContext } from './context.js'
import { planImage } from './plan-image.js'
import { checkPreviewOpen, confirmPreviewOpen } from './preview-guard.js'
import { promote } from './promote.js'
import { remove } from './remove.js'
import { pinImage, renderManifest } from './render-manifest.js'
import { checkCluster } from './check-cluster.js'
import { prepareSmokeTest } from './prepare-smoke-test.js'
import { showPlan } from './show-plan.js'
import { reportFailureToGitHub, reportRemovalToGitHub, reportToGitHub } from './report-github.js'
import { resolveModel } from './resolve-model.js'
import { shiftTraffic } from './shift-traffic.js'
import { smokeTest } from './smoke-test.js'
import { waitReady } from './wait-ready.js'

/**
 * Everything a deploy needs to know before it changes anything: each check that can fail does so
 * here, before an image is pushed or an object applied. Changes nothing.
 */
const CHECKS: readonly [string, Stage][] = [
  ['check preview', checkPreviewOpen],
  ['resolve model', resolveModel],
  ['plan image', planImage],
  ['render manifest', renderManifest],
  ['check cluster', checkCluster],
  ['prepare smoke test', prepareSmokeTest],
]

export const PLAN: Record<Action, readonly [string, Stage][]> = {
  deploy: [
    ...CHECKS,
    ['build image', buildImage],
    ['pin image', pinImage],
    ['apply', apply],
    ['confirm preview', confirmPreviewOpen],
    ['wait for ready', waitReady],
    ['smoke test', smokeTest],
    ['shift traffic', shiftTraffic],
    ['promote', promote],
    ['report to GitHub', reportToGitHub],
  ],
  plan: [...CHECKS, ['show plan', showPlan]],
  // Writes the manifest for GitOps; builds nothing and touches no cluster.
  render: [
    ['resolve model', resolveModel],
    ['plan image', planImage],
    ['render manifest', renderManifest],
  ],
  delete: [
    ['delete', remove],
    ['report to GitHub', reportRemovalToGitHub],
  ],
  cleanup: [['cleanup previews', cleanupPreviews]],
}

/** Run once, best effort, after a stage of the action failed: GitHub hears about the failure. */
export const ON_FAILURE: Partial<Record<Action, Stage>> = { deploy: reportFailureToGitHub }

export async function runPipeline(
  ctx: StageContext,
  clock: Pick<Clock, 'now'>,
  plan = PLAN[ctx.inputs.action],
  onFailure = plan === PLAN[ctx.inputs.action] ? ON_FAILURE[ctx.inputs.action] : undefined,
): Promise<void> {
  const { inputs, report, log } = ctx
  // Outputs known before any stage runs are written even if a stage fails.
  report.set('name', inputs.cluster.name)
  report.set('namespace', inputs.cluster.namespace)
  report.set('model-name', inputs.model && registeredName(inputs.model.ref))

  for (const [title, stage] of plan) {
    ctx.signal.throwIfAborted()
    const started = clock.now()
    try {
      const outcome = await log.group(title, () => stage(ctx))
      log.info(`${title}: ${outcome.decision}`)
      report.record({
        name: title,
        status: outcome.skipped ? 'skipped' : 'ok',
        decision: outcome.decision,
        durationMs: clock.now() - started,
      })
    } catch (err) {
      report.record({ name: title, status: 'failed', decision: errorMessage(err), durationMs: clock.now() - started })
      const failure = new StageFailure(title, err)
      if (onFailure && !ctx.signal.aborted) {
        ctx.state.failure = failure.message
        ctx.state.failureCause = err
        await onFailure(ctx).then(
          (o) => log.info(`after the failure: ${o.decision}`),
          (e: unknown) => log.warning(`could not report the failure to GitHub: ${errorMessage(e)}`),
        )
      }
      // The hook may have found what really happened (a preview whose PR closed meanwhile).
      const restated = ctx.state.failureRestated
      throw restated ? new StageFailure(title, new DeployError(restated, { cause: err })) : failure
    }
  }
}

/** A stage failed: the message names the stage and carries the cause's evidence, whole. */
export class StageFailure extends Error {
  override readonly name = 'StageFailure'
  constructor(
    readonly stage: string,
    override readonly cause: unknown,
  ) {
    super(`${stage}: ${errorMessage(cause)}`)
  }
}
