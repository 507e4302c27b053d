import { buildV2Request } from '../inference/request.js'
import type { SmokeModel } from '../inference/smoke.js'
import type { Inputs } from '../inputs.js'
import type { ModelDetails } from '../mlflow/index.js'
import { DeployError } from '../util/errors.js'
import type { Stage } from './context.js'
import type { ResolvedModelResult } from './resolve-model.js'

/** The smoke test's request is built before anything changes: a model it cannot test fails here. */
export const prepareSmokeTest: Stage<Pick<ResolvedModelResult, 'details'>> = async ({ inputs }, { details }) => {
  if (!inputs.flow.smokeTest) return { decision: 'no smoke test (smoke-test: false)', skipped: true }
  const model = smokeModel(inputs, details)
  let built
  try {
    built = buildV2Request(model)
  } catch (err) {
    throw new DeployError(`no smoke-test request: ${(err as Error).message} (or smoke-test: false)`)
  }
  const what = built.request.inputs.map((i) => i.name).join(', ')
  return { decision: `V2 request from the ${built.source}: ${built.request.inputs.length} input(s) (${what})` }
}

/** What the smoke test needs of the model: its signature, input example, or the user's request. */
export function smokeModel(inputs: Inputs, details: ModelDetails): Omit<SmokeModel, 'name'> {
  const example = details.inputExample
  return {
    signature: details.mlmodel.signature,
    example: example && {
      type: example.info.type ?? 'dataframe',
      pandasOrient: example.info.pandasOrient,
      content: example.example,
    },
    override: inputs.flow.smokeTestInput,
  }
}
