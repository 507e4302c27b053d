import { need, type Stage } from './context.js'
import { smokeModel } from './prepare-smoke-test.js'

/** A real V2 inference on the exact path users will call; a failure after an update rolls back. */
export const smokeTest: Stage = async ({ inputs, services, signal, state, report }) => {
  if (!inputs.flow.smokeTest) return { decision: 'skipped (smoke-test: false)', skipped: true }
  const deployment = need(state.deployment, 'the ready deployment')
  const result = await services.cluster().smokeTest(deployment, smokeModel(inputs, state), {
    timeoutMs: inputs.flow.timeoutMs,
    ingress: { host: inputs.flow.ingressHost, address: inputs.flow.ingressAddress },
    signal,
  })
  state.smoke = result
  const outputs = result.outputs.map((o) => `${o.name} [${o.shape.join(',')}]`).join(', ')
  const decision = `passed: ${outputs} from the ${result.source} in ${Math.round(result.latencyMs)} ms`
  report.smokeTest = decision
  return { decision }
}
