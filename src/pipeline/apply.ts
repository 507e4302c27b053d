import type { Applied } from '../k8s/index.js'
import { Budget } from '../util/clock.js'
import { progressDeadlineS } from './check-cluster.js'
import type { Stage } from './context.js'
import type { RenderedManifest } from './render-manifest.js'

export interface AppliedResult {
  readonly applied: Applied
  /** The one deadline of the rollout (timeout), started at the apply. */
  readonly budget: Budget
}

/** Server-side apply; the previous object is kept for the wait and a rollback. */
export const apply: Stage<Pick<RenderedManifest, 'manifest'>, AppliedResult> = async (
  { inputs, services, signal },
  { manifest },
) => {
  // One deadline from here on: wait, smoke test and rollback share `timeout`.
  const budget = new Budget({ now: () => services.now() }, inputs.flow.timeoutMs)
  const applied = await services.cluster().apply(manifest, {
    takeOver: inputs.cluster.takeOver,
    trafficPercent: inputs.flow.trafficPercent,
    tag: inputs.flow.tag,
    progressDeadlineS: progressDeadlineS(inputs.flow),
    // Staging needs the wait and smoke test that verify the revision before it gets traffic.
    stage: inputs.flow.wait,
    signal,
  })
  const verb = applied.created ? 'created' : applied.changed ? 'updated' : 'unchanged (same spec)'
  const staged = applied.final ? ', new revision staged at 0 % until verified' : ''
  return { decision: `${verb}, generation ${applied.expectation.generation}${staged}`, applied, budget }
}
