import type { StageContext, StageOutcome } from './context.js'

/** `action: delete`: removes the Service / InferenceService this action created. Idempotent. */
export async function remove({ inputs, services, signal }: StageContext): Promise<StageOutcome> {
  const { target, namespace, name, takeOver } = inputs.cluster
  const result = await services
    .cluster()
    .remove({ target, namespace, name }, { timeoutMs: inputs.flow.timeoutMs, takeOver, signal })
  return {
    decision: result.removed ? `deleted ${namespace}/${name}` : `${namespace}/${name} did not exist: nothing to delete`,
  }
}
