import { need, type Stage } from './context.js'

/** A real V2 inference on the exact path users will call; a failure after an update rolls back. */
export const smokeTest: Stage = async ({ inputs, services, signal, state, report }) => {
  if (!inputs.flow.smokeTest) return { decision: 'skipped (smoke-test: false)', skipped: true }
  const deployment = need(state.deployment, 'the ready deployment')
  const details = state.details
  const example = details?.inputExample
  const result = await services.cluster().smokeTest(
    deployment,
    {
      signature: details?.mlmodel.signature,
      example: example && {
        type: example.info.type ?? 'dataframe',
        pandasOrient: example.info.pandasOrient,
        content: example.example,
      },
      override: inputs.flow.smokeTestInput,
    },
    { timeoutMs: inputs.flow.timeoutMs, ingressHost: inputs.flow.ingressHost, signal },
  )
  state.smoke = result
  const outputs = result.outputs.map((o) => `${o.name} [${o.shape.join(',')}]`).join(', ')
  const decision = `passed: ${outputs} from the ${result.source} in ${Math.round(result.latencyMs)} ms`
  report.smokeTest = decision
  return { decision }
}
