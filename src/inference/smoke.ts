// The smoke test: the exact path users will call answers a real inference with the outputs the
// model's signature promises.
import type { Clock } from '../util/clock.js'
import { DeployError } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { buildV2Request, checkV2Response, type InputExampleLike, type RequestSource } from './request.js'
import type { Signature } from '../contract/signature.js'
import type { V2Client } from './v2.js'

export interface SmokeModel {
  /** The V2 model name: MLSERVER_MODEL_NAME, i.e. the Service / InferenceService name. */
  readonly name: string
  readonly signature?: Signature
  readonly example?: InputExampleLike
  /** The `smoke-test-input` request, used as given. */
  readonly override?: Readonly<Record<string, unknown>>
}

export interface SmokeResult {
  readonly model: string
  readonly source: RequestSource
  /** Time until the server and the model said ready. */
  readonly readyMs: number
  /** Round trip of the inference that answered. */
  readonly latencyMs: number
  readonly attempts: number
  readonly outputs: readonly { name: string; shape: number[]; datatype: string }[]
  /** The first few values of the first output, for the log. */
  readonly sample: readonly unknown[]
  readonly warnings: readonly string[]
}

export class SmokeTestError extends DeployError {}

export async function runSmokeTest(
  client: V2Client,
  model: SmokeModel,
  options: { budgetMs: number; clock: Clock; log: Logger; signal?: AbortSignal },
): Promise<SmokeResult> {
  const { clock, log } = options
  const started = clock.now()
  const built = buildV2Request(model)
  log.info(`smoke test: request built from the ${built.source} (${built.request.inputs.length} input(s))`)
  log.debug(`smoke test request: ${JSON.stringify(built.request).slice(0, 2000)}`)
  const ready = await client.waitReady(model.name, { budgetMs: options.budgetMs, signal: options.signal })
  const left = Math.max(1_000, options.budgetMs - (clock.now() - started))
  const { response, latencyMs, attempts } = await client.infer(model.name, built.request, {
    budgetMs: left,
    signal: options.signal,
  })
  const check = checkV2Response(response, model.signature?.outputs, built.rows)
  for (const w of check.warnings) log.warning(`smoke test: ${w}`)
  if (check.problems.length > 0) {
    throw new SmokeTestError(`smoke test of /v2/models/${model.name}/infer: ${check.problems.join('; ')}`)
  }
  const outputs = response.outputs.map((o) => ({ name: o.name, shape: o.shape, datatype: o.datatype }))
  return {
    model: model.name,
    source: built.source,
    readyMs: ready.elapsedMs,
    latencyMs,
    attempts: ready.attempts + attempts,
    outputs,
    sample: (response.outputs[0]?.data ?? []).slice(0, 5),
    warnings: check.warnings,
  }
}
