import type { Stage } from './context.js'

/** `action: delete`: removes the Service / InferenceService this action created. Idempotent. */
export const remove: Stage = async ({ inputs, services, signal }) => {
  const { target, namespace, name, takeOver } = inputs.cluster
  const result = await services
    .cluster()
    .remove({ target, namespace, name }, { timeoutMs: inputs.flow.timeoutMs, takeOver, signal })
  return {
    decision: result.removed ? `deleted ${namespace}/${name}` : `${namespace}/${name} did not exist: nothing to delete`,
  }
}
