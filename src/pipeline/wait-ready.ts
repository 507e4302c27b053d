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
  return {
    decision: `ready after ${(deployment.waitedMs / 1000).toFixed(1)} s: revision ${deployment.revision ?? '?'} at ${deployment.url ?? '(no URL)'}`,
  }
}
