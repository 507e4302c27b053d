import { progressDeadlineS } from './check-cluster.js'
import { need, type Stage } from './context.js'
import { formatTraffic } from './wait-ready.js'

/**
 * A revision staged at 0 % (a parked revision would have taken its traffic) gets the traffic asked
 * for, now that the wait and the smoke test have verified it.
 */
export const shiftTraffic: Stage = async ({ inputs, services, signal, state, report }) => {
  const deployment = state.deployment
  if (!deployment?.applied.final) return { decision: 'traffic moved with the rollout', skipped: true }
  const budget = need(state.budget, 'the rollout budget')
  const shifted = await services.cluster().shiftTraffic(deployment, need(state.manifest, 'the manifest'), {
    takeOver: inputs.cluster.takeOver,
    progressDeadlineS: progressDeadlineS(inputs.flow),
    timeoutMs: Math.max(budget.forwardMs(), budget.reserveMs),
    signal,
  })
  state.deployment = shifted
  report.set('url', inputs.flow.tag ? shifted.smokeUrl : shifted.url)
  if (report.traffic) report.traffic = { ...report.traffic, after: formatTraffic(shifted.traffic) }
  return { decision: `traffic: ${formatTraffic(shifted.traffic)}` }
}
