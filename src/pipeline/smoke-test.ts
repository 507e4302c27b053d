import type { SignatureLike } from '../inference/request.js'
import type { Signature } from '../mlflow/index.js'
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
      signature: details?.mlmodel.signature && asSignatureLike(details.mlmodel.signature),
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

/** The parsed MLmodel signature back in MLflow's own JSON shape, which the V2 request builder reads. */
function asSignatureLike(signature: Signature): SignatureLike {
  const entries = (specs: Signature['inputs']) =>
    specs?.map((s) =>
      s.kind === 'tensor'
        ? { type: 'tensor' as const, name: s.name, 'tensor-spec': { dtype: s.dtype, shape: s.shape } }
        : { ...s.raw, type: s.type, name: s.name, required: s.required },
    )
  return { inputs: entries(signature.inputs), outputs: entries(signature.outputs) }
}
