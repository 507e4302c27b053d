// The pipeline: which stages run for each action, in order, each timed and recorded.
import { registeredName } from '../mlflow/model-uri.js'
import { errorMessage } from '../util/errors.js'
import type { Report } from '../report/report.js'
import { STAGE_TITLES, type StageContext, type Stages } from './stages.js'

export interface Clock {
  now(): number
}

const PLAN: Record<StageContext['inputs']['action'], readonly (keyof Stages)[]> = {
  deploy: ['resolveModel', 'planImage', 'buildImage', 'renderManifest', 'apply', 'waitReady', 'smokeTest', 'promote'],
  render: ['resolveModel', 'planImage', 'renderManifest'],
  delete: ['remove'],
}

export async function runPipeline(ctx: StageContext, stages: Stages, report: Report, clock: Clock): Promise<void> {
  const { inputs } = ctx
  // Outputs known before any stage runs are written even if a stage fails.
  report.set('name', inputs.cluster.name)
  report.set('namespace', inputs.cluster.namespace)
  report.set('model-name', registeredName(inputs.model.ref))

  for (const key of PLAN[inputs.action]) {
    ctx.signal.throwIfAborted()
    const title = STAGE_TITLES[key]
    const started = clock.now()
    try {
      const { decision } = await ctx.log.group(title, () => stages[key](ctx))
      ctx.log.info(`${title}: ${decision}`)
      report.record({ name: title, status: 'ok', decision, durationMs: clock.now() - started })
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
