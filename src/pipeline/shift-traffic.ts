import type { AppliedResult } from './apply.js'
import { progressDeadlineS } from './check-cluster.js'
import type { Stage } from './context.js'
import type { RenderedManifest } from './render-manifest.js'
import { formatTraffic, type ReadyResult } from './wait-ready.js'

/**
 * A revision staged at 0 % (a parked revision would have taken its traffic) gets the traffic asked
 * for, now that the wait and the smoke test have verified it.
 */
export const shiftTraffic: Stage<
  ReadyResult & Pick<AppliedResult, 'budget'> & Pick<RenderedManifest, 'manifest'>,
  ReadyResult
> = async ({ inputs, services, signal, report }, { deployment, budget, manifest }) => {
  if (!deployment?.applied.final) return { decision: 'traffic moved with the rollout', skipped: true, deployment }
  const shifted = await services.cluster().shiftTraffic(deployment, manifest, {
    takeOver: inputs.cluster.takeOver,
    progressDeadlineS: progressDeadlineS(inputs.flow),
    timeoutMs: Math.max(budget.forwardMs(), budget.reserveMs),
    signal,
  })
  report.set('url', inputs.flow.tag ? shifted.smokeUrl : shifted.url)
  if (report.traffic) report.traffic = { ...report.traffic, after: formatTraffic(shifted.traffic) }
  return { decision: `traffic: ${formatTraffic(shifted.traffic)}`, deployment: shifted }
}
