import { buildV2Request } from '../inference/request.js'
import type { SmokeModel } from '../inference/smoke.js'
import type { Inputs } from '../inputs.js'
import { DeployError } from '../util/errors.js'
import type { RunState, Stage } from './context.js'

/** The smoke test's request is built before anything changes: a model it cannot test fails here. */
export const prepareSmokeTest: Stage = async ({ inputs, state }) => {
  if (!inputs.flow.smokeTest) return { decision: 'no smoke test (smoke-test: false)', skipped: true }
  const model = smokeModel(inputs, state)
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
export function smokeModel(inputs: Inputs, state: RunState): Omit<SmokeModel, 'name'> {
  const details = state.details
  const example = details?.inputExample
  return {
    signature: details?.mlmodel.signature,
    example: example && {
      type: example.info.type ?? 'dataframe',
      pandasOrient: example.info.pandasOrient,
      content: example.example,
    },
    override: inputs.flow.smokeTestInput,
  }
}
