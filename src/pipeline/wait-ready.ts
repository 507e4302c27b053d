import { servingStatus, type TrafficTarget } from '../k8s/readiness.js'
import { need, type Stage } from './context.js'

/** Watches the new generation until Ready; a failed update is rolled back to the previous spec. */
export const waitReady: Stage = async ({ inputs, services, signal, report, state }) => {
  if (!inputs.flow.wait) return { decision: 'not waiting (wait: false)', skipped: true }
  const deployment = await services
    .cluster()
    .waitReady(need(state.applied, 'the applied object'), { timeoutMs: inputs.flow.timeoutMs, signal })
  state.deployment = deployment
  report.set('url', deployment.smokeUrl ?? deployment.url)
  report.set('revision', deployment.revision)
  const applied = need(state.applied, 'the applied object')
  report.traffic = {
    before: applied.previous ? formatTraffic(servingStatus(applied.previous).traffic) : 'none (new service)',
    after: formatTraffic(deployment.traffic),
  }
  return {
    decision: `ready after ${(deployment.waitedMs / 1000).toFixed(1)} s: revision ${deployment.revision ?? '?'} at ${deployment.url ?? '(no URL)'}`,
  }
}

/** "wine-00002 100%" or "wine-00002 10% (tag candidate), wine-00001 90%". */
export function formatTraffic(traffic: readonly TrafficTarget[]): string {
  if (traffic.length === 0) return 'not reported'
  return traffic.map((t) => `${t.revision ?? 'latest'} ${t.percent ?? 0}%${t.tag ? ` (tag ${t.tag})` : ''}`).join(', ')
}
