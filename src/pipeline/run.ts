// The pipeline: which stages run for each action, in order, each timed, logged as a group and
// recorded with its decision.
import { registeredName } from '../mlflow/model-uri.js'
import { errorMessage } from '../util/errors.js'
import type { Action } from '../inputs.js'
import { apply } from './apply.js'
import { cleanupPreviews } from './cleanup-previews.js'
import { buildImage } from './build-image.js'
import type { Stage, StageContext } from './context.js'
import { planImage } from './plan-image.js'
import { promote } from './promote.js'
import { remove } from './remove.js'
import { renderManifest } from './render-manifest.js'
import { resolveModel } from './resolve-model.js'
import { smokeTest } from './smoke-test.js'
import { waitReady } from './wait-ready.js'

export interface Clock {
  now(): number
}

export const PLAN: Record<Action, readonly [string, Stage][]> = {
  deploy: [
    ['resolve model', resolveModel],
    ['plan image', planImage],
    ['build image', buildImage],
    ['render manifest', renderManifest],
    ['apply', apply],
    ['wait for ready', waitReady],
    ['smoke test', smokeTest],
    ['promote', promote],
  ],
  render: [
    ['resolve model', resolveModel],
    ['plan image', planImage],
    ['build image', buildImage],
    ['render manifest', renderManifest],
  ],
  delete: [['delete', remove]],
  cleanup: [['cleanup previews', cleanupPreviews]],
}

export async function runPipeline(ctx: StageContext, clock: Clock, plan = PLAN[ctx.inputs.action]): Promise<void> {
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
      throw new StageFailure(title, err)
    }
  }
}

/** A stage failed: the message names the stage and carries the cause's one-line evidence. */
export class StageFailure extends Error {
  override readonly name = 'StageFailure'
  constructor(
    readonly stage: string,
    override readonly cause: unknown,
  ) {
    super(`${stage}: ${errorMessage(cause)}`)
  }
}
