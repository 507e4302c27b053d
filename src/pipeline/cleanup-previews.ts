// `action: cleanup`: the sweep for previews nobody deleted (a missed `closed` event, a PR left open
// for months). Only this repository's previews made by this action are looked at.
import {
  EXPIRES_ANNOTATION,
  MANAGED_BY,
  PR_LABEL,
  PREVIEW_LABEL,
  REPOSITORY_LABEL,
  repositoryLabel,
} from '../k8s/render.js'
import type { KubeObject } from '../k8s/readiness.js'
import { deadline, systemClock } from '../util/clock.js'
import { DeployError } from '../util/errors.js'
import { formatDuration } from '../util/duration.js'
import type { StageContext, StageOutcome } from './context.js'

export interface SweepDecision {
  readonly remove: boolean
  readonly reason: string
}

/** Whether a preview goes: expired (expires-at passed) or, with olderThanMs, created too long ago. */
export function sweepDecision(object: KubeObject, nowMs: number, olderThanMs: number | undefined): SweepDecision {
  const meta = object.metadata ?? {}
  const expires = meta.annotations?.[EXPIRES_ANNOTATION]
  const expiresMs = expires ? Date.parse(expires) : NaN
  if (!Number.isNaN(expiresMs) && expiresMs <= nowMs) return { remove: true, reason: `expired at ${expires}` }
  const created = Date.parse((meta as { creationTimestamp?: string }).creationTimestamp ?? '')
  if (olderThanMs !== undefined && !Number.isNaN(created) && nowMs - created > olderThanMs) {
    return { remove: true, reason: `created ${formatDuration(nowMs - created)} ago` }
  }
  if (expires && Number.isNaN(expiresMs)) return { remove: false, reason: `unreadable expiry "${expires}"` }
  return { remove: false, reason: expires ? `expires at ${expires}` : 'no expiry' }
}

export function previewSelector(repository: string): string {
  return [
    `app.kubernetes.io/managed-by=${MANAGED_BY}`,
    `${PREVIEW_LABEL}=true`,
    `${REPOSITORY_LABEL}=${repositoryLabel(repository)}`,
  ].join(',')
}

export async function cleanupPreviews({ inputs, services, log, signal }: StageContext): Promise<StageOutcome> {
  const repository = services.run.repository
  if (!repository) throw new DeployError('cleanup needs GITHUB_REPOSITORY to tell which previews are this repository’s')
  const { target, namespace } = inputs.cluster
  const cluster = services.cluster()
  // One budget for the whole sweep: a stuck finalizer must not hold the job for ever.
  const budget = deadline(systemClock, inputs.flow.timeoutMs, 'the preview sweep', signal)
  try {
    const found = await cluster.list(target, namespace, previewSelector(repository), budget.signal)
    const now = services.now()
    const removed: string[] = []
    const kept: string[] = []
    for (const object of found) {
      const name = object.metadata?.name ?? '?'
      const pr = object.metadata?.labels?.[PR_LABEL]
      const decision = sweepDecision(object, now, inputs.preview.cleanupOlderThanMs)
      if (!decision.remove) {
        log.info(`keep ${name} (PR #${pr}): ${decision.reason}`)
        kept.push(name)
        continue
      }
      log.info(`delete ${name} (PR #${pr}): ${decision.reason}`)
      // The uid pins the object we judged: a preview re-created meanwhile is not ours to remove.
      await cluster.remove(
        { target, namespace, name },
        { timeoutMs: inputs.flow.timeoutMs, uid: object.metadata?.uid, signal: budget.signal },
      )
      removed.push(name)
    }
    const list = (names: string[]) => (names.length ? `: ${names.join(', ')}` : '')
    return { decision: `deleted ${removed.length}${list(removed)}; kept ${kept.length}${list(kept)}` }
  } finally {
    budget.dispose()
  }
}
