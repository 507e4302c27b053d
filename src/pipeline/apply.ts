import { need, type Stage } from './context.js'

/** Server-side apply; the previous object is kept for the wait and a rollback. */
export const apply: Stage = async ({ inputs, services, signal, state }) => {
  const manifest = need(state.manifest, 'the manifest')
  const applied = await services.cluster().apply(manifest, {
    takeOver: inputs.cluster.takeOver,
    trafficPercent: inputs.flow.trafficPercent,
    tag: inputs.flow.tag,
    signal,
  })
  state.applied = applied
  const verb = applied.created ? 'created' : applied.changed ? 'updated' : 'unchanged (same spec)'
  return { decision: `${verb}, generation ${applied.expectation.generation}` }
}
