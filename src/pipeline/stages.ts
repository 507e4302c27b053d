// The pipeline's stages, in order. Each returns data plus a one-line decision for the log and
// the summary. Stages not built yet fail honestly with NotImplementedError.
import { NotImplementedError } from '../util/errors.js'
import type { Inputs } from '../inputs.js'
import type { Logger } from '../util/logger.js'

export interface StageContext {
  readonly inputs: Inputs
  readonly log: Logger
  readonly signal: AbortSignal
}

export interface StageResult<T> {
  readonly value: T
  readonly decision: string
}

/** The outside-system operations the pipeline needs, supplied by the composition root. */
export interface Stages {
  resolveModel(ctx: StageContext): Promise<StageResult<void>>
  planImage(ctx: StageContext): Promise<StageResult<void>>
  buildImage(ctx: StageContext): Promise<StageResult<void>>
  renderManifest(ctx: StageContext): Promise<StageResult<void>>
  apply(ctx: StageContext): Promise<StageResult<void>>
  waitReady(ctx: StageContext): Promise<StageResult<void>>
  smokeTest(ctx: StageContext): Promise<StageResult<void>>
  promote(ctx: StageContext): Promise<StageResult<void>>
  remove(ctx: StageContext): Promise<StageResult<void>>
}

export const STAGE_TITLES: Record<keyof Stages, string> = {
  resolveModel: 'resolve model',
  planImage: 'plan image',
  buildImage: 'build image',
  renderManifest: 'render manifest',
  apply: 'apply',
  waitReady: 'wait for ready',
  smokeTest: 'smoke test',
  promote: 'promote',
  remove: 'delete',
}

const notYet = (stage: keyof Stages) => async (): Promise<StageResult<void>> => {
  throw new NotImplementedError(STAGE_TITLES[stage])
}

/** Stages of this version: every one still to be built says so. */
export function unimplementedStages(): Stages {
  const stages = {} as Record<keyof Stages, Stages[keyof Stages]>
  for (const key of Object.keys(STAGE_TITLES) as (keyof Stages)[]) stages[key] = notYet(key)
  return stages as Stages
}
