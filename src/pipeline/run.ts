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
import { attestModel, checkCosign, signImage, verifySignature } from './sign-image.js'
import { reportFailureToGitHub, reportRemovalToGitHub, reportToGitHub } from './report-github.js'
import { resolveModel } from './resolve-model.js'
import { shiftTraffic } from './shift-traffic.js'
import { smokeTest } from './smoke-test.js'
import { waitReady } from './wait-ready.js'

/**
 * The stages of an action, in order. Each stage gets the results of the stages before it: `add`
 * takes only a stage whose needs the results so far meet, so the compiler knows the order.
 */
export class StageTable<Results extends object> {
  private constructor(readonly stages: readonly StageEntry[]) {}

  static start(): StageTable<object> {
    return new StageTable([])
  }

  add<Out extends object>(title: string, stage: Stage<Results, Out>): StageTable<With<Results, Out>> {
    return new StageTable([...this.stages, [title, stage]])
  }
}

/** The results after a stage: its own fields replace earlier ones of the same name. */
type With<Results, Out> = Omit<Results, keyof Out> & Out

/** A stage as the runner holds it, whatever it needs. */
export type StageEntry = readonly [title: string, stage: Stage<never>]

/**
 * Everything a deploy needs to know before it changes anything: each check that can fail does so
 * here, before an image is pushed or an object applied. Changes nothing.
 */
const CHECKS = StageTable.start()
  .add('check preview', checkPreviewOpen)
  .add('resolve model', resolveModel)
  .add('plan image', planImage)
  .add('render manifest', renderManifest)
  .add('check cluster', checkCluster)
  .add('prepare smoke test', prepareSmokeTest)

export const PLAN: Record<Action, StageTable<object>> = {
  deploy: CHECKS.add('check cosign', checkCosign)
    .add('build image', buildImage)
    .add('sign image', signImage)
    .add('attest model', attestModel)
    .add('pin image', pinImage)
    .add('verify signature', verifySignature)
    .add('apply', apply)
    .add('confirm preview', confirmPreviewOpen)
    .add('wait for ready', waitReady)
    .add('smoke test', smokeTest)
    .add('shift traffic', shiftTraffic)
    .add('promote', promote)
    .add('report to GitHub', reportToGitHub),
  plan: CHECKS.add('show plan', showPlan),
  // Writes the manifest for GitOps; builds nothing and touches no cluster.
  render: StageTable.start()
    .add('resolve model', resolveModel)
    .add('plan image', planImage)
    .add('render manifest', renderManifest),
  delete: StageTable.start().add('delete', remove).add('report to GitHub', reportRemovalToGitHub),
  cleanup: StageTable.start().add('cleanup previews', cleanupPreviews),
}

/**
 * Run once, best effort, after a stage of the action failed: GitHub hears about the failure. It
 * gets the results of the stages that ran.
 */
export const ON_FAILURE: Partial<Record<Action, Stage<never>>> = { deploy: reportFailureToGitHub }

export async function runPipeline(
  ctx: StageContext,
  clock: Pick<Clock, 'now'>,
  stages: readonly StageEntry[] = PLAN[ctx.inputs.action].stages,
  onFailure = stages === PLAN[ctx.inputs.action].stages ? ON_FAILURE[ctx.inputs.action] : undefined,
): Promise<void> {
  const { inputs, report, log } = ctx
  // Outputs known before any stage runs are written even if a stage fails.
  report.set('name', inputs.cluster.name)
  report.set('namespace', inputs.cluster.namespace)
  report.set('model-name', inputs.model && registeredName(inputs.model.ref))

  // The results so far: each stage's own fields, later ones replacing earlier ones of the same name.
  // StageTable checked at compile time that they hold what each stage takes.
  let results: object = {}
  for (const [title, stage] of stages) {
    ctx.signal.throwIfAborted()
    const started = clock.now()
    try {
      const { decision, skipped, ...gives } = await log.group(title, () => stage(ctx, results as never))
      results = { ...results, ...gives }
      log.info(`${title}: ${decision}`)
      report.record({ name: title, status: skipped ? 'skipped' : 'ok', decision, durationMs: clock.now() - started })
    } catch (err) {
      report.record({ name: title, status: 'failed', decision: errorMessage(err), durationMs: clock.now() - started })
      const failure = new StageFailure(title, err)
      if (onFailure && !ctx.signal.aborted) {
        ctx.state.failure = failure.message
        ctx.state.failureCause = err
        await onFailure(ctx, results as never).then(
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
