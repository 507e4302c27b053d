// What a run found out, gathered as it goes: outputs as they become known, and each stage
// with its decision and duration. main.ts publishes it once, success or failure.

export const OUTPUT_NAMES = [
  'url',
  'revision',
  'failed-revision',
  'image',
  'digest',
  'cache-hit',
  'model-name',
  'model-version',
  'run-id',
  'name',
  'namespace',
  'manifest',
  'plan',
] as const
export type OutputName = (typeof OUTPUT_NAMES)[number]

export type StageStatus = 'ok' | 'failed' | 'skipped'
export interface StageRecord {
  readonly name: string
  readonly status: StageStatus
  /** One line saying what the stage decided or found ("cache hit: sha256:…, build skipped"). */
  readonly decision: string
  readonly durationMs: number
}

export class Report {
  readonly outputs: Partial<Record<OutputName, string>> = {}
  readonly stages: StageRecord[] = []
  failure: string | undefined
  /** Traffic split as the controller reported it, before the apply and once ready. */
  traffic: { before: string; after: string } | undefined
  /** The smoke test's one-line result (outputs, latency). */
  smokeTest: string | undefined
  /** `action: plan`: what a deploy would do, several lines. */
  plan: string | undefined

  set(name: OutputName, value: string | undefined): void {
    if (value !== undefined) this.outputs[name] = value
  }
  record(stage: StageRecord): void {
    this.stages.push(stage)
  }
}
