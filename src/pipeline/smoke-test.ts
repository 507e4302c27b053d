import { need, type Stage } from './context.js'
import { smokeModel } from './prepare-smoke-test.js'
import { reportRollout, rolloutWait } from './wait-ready.js'

/** A real V2 inference on the new revision's own URL; a failure after an update rolls back. */
export const smokeTest: Stage = async ({ inputs, services, signal, state, report, log }) => {
  if (!inputs.flow.smokeTest) return { decision: 'skipped (smoke-test: false)', skipped: true }
  const deployment = need(state.deployment, 'the ready deployment')
  const budget = need(state.budget, 'the rollout budget')
  if (inputs.flow.ingressHost) {
    log.warning(
      'ingress-host is deprecated and will be removed: set ingress-address (where the ingress is) instead; ' +
        'the Host header then follows the URL under test, so a tag or preview URL reaches its own revision',
    )
  }
  const result = await services
    .cluster()
    .smokeTest(deployment, smokeModel(inputs, state), {
      ...rolloutWait(budget, inputs.flow, signal),
      ingress: { host: inputs.flow.ingressHost, address: inputs.flow.ingressAddress },
    })
    .catch((err: unknown) => reportRollout(report, err))
  state.smoke = result
  const outputs = result.outputs.map((o) => `${o.name} [${o.shape.join(',')}]`).join(', ')
  const decision = `passed: ${outputs} from the ${result.source} in ${Math.round(result.latencyMs)} ms`
  report.smokeTest = decision
  return { decision }
}
