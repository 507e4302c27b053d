import { RolloutError, type Deployment, type RolloutWaitOptions } from '../k8s/index.js'
import type { Inputs } from '../inputs.js'
import type { Budget } from '../util/clock.js'
import { servingStatus, type TrafficTarget } from '../k8s/readiness.js'
import type { Report } from '../report/report.js'
import type { AppliedResult } from './apply.js'
import type { Stage } from './context.js'

/** Undefined when the deploy does not wait (wait: false): nothing is known to serve then. */
export interface ReadyResult {
  readonly deployment?: Deployment
}

/** Watches the new generation until Ready; a failed update is rolled back. */
export const waitReady: Stage<AppliedResult, ReadyResult> = async (
  { inputs, services, signal, report },
  { applied, budget },
) => {
  if (!inputs.flow.wait) return { decision: 'not waiting (wait: false)', skipped: true }
  const deployment = await services
    .cluster()
    .waitReady(applied, rolloutWait(budget, inputs.flow, signal))
    .catch((err: unknown) => reportRollout(report, err))
  // The tag URL when the user asked for a tag; a tag the action added for the smoke test is its own.
  report.set('url', inputs.flow.tag ? deployment.smokeUrl : deployment.url)
  report.set('revision', deployment.revision)
  report.traffic = {
    before: applied.previous ? formatTraffic(servingStatus(applied.previous).traffic) : 'none (new service)',
    after: formatTraffic(deployment.traffic),
  }
  return {
    decision: `ready after ${(deployment.waitedMs / 1000).toFixed(1)} s: revision ${deployment.revision ?? '?'} at ${deployment.url ?? '(no URL)'}`,
    deployment,
  }
}

/** The wait's share of the run's one deadline, the rollback's, and the wait-window. */
export function rolloutWait(budget: Budget, flow: Inputs['flow'], signal: AbortSignal): RolloutWaitOptions {
  return {
    timeoutMs: budget.forwardMs(),
    rollbackMs: () => budget.rollbackMs(),
    waitWindowMs: flow.waitWindowMs,
    signal,
  }
}

/**
 * A failed rollout's outputs say what serves now and what failed, the same way on every failure
 * path (wait or smoke test; rolled back, left, or gone). Rethrows.
 */
export function reportRollout(report: Report, err: unknown): never {
  if (err instanceof RolloutError) {
    // An object that is gone serves nothing: not the URL and revision the wait found before.
    if (err.outcome === 'gone') {
      delete report.outputs.url
      delete report.outputs.revision
    }
    report.set('url', err.found.serving?.url)
    report.set('revision', err.found.serving?.revision)
    report.set('failed-revision', err.found.failedRevision)
  }
  throw err
}

/** "wine-00002 100%" or "wine-00002 10% (tag candidate), wine-00001 90%". */
export function formatTraffic(traffic: readonly TrafficTarget[]): string {
  if (traffic.length === 0) return 'not reported'
  return traffic.map((t) => `${t.revision ?? 'latest'} ${t.percent ?? 0}%${t.tag ? ` (tag ${t.tag})` : ''}`).join(', ')
}
