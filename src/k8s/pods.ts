// Pod states that decide a rollout before its controller does: KServe Standard mode reports
// only Deployment availability, and Knative reads a revision's pods only at its progress deadline.
import type { KubeObject } from './readiness.js'

// Container states after which the pod will not come up without a change. ErrImagePull alone is
// left out: the kubelet retries it once before backing off, and a registry blip would fail a deploy.
const POD_FAILURES = new Set([
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
])

// A container restarted this often and found terminated again is in a crash loop, even in the
// moment between two back-offs when its state says `terminated`, not `waiting: CrashLoopBackOff`.
const CRASH_LOOP_RESTARTS = 2

interface Terminated {
  exitCode?: number
  reason?: string
  message?: string
}

interface ContainerStatus {
  name?: string
  restartCount?: number
  state?: { waiting?: { reason?: string; message?: string }; terminated?: Terminated }
  lastState?: { terminated?: Terminated }
}

const exited = (t: Terminated) =>
  `exited with code ${t.exitCode ?? '?'}${t.message ? `: ${t.message.trim()}` : t.reason ? ` (${t.reason})` : ''}`

/** Why one container will not come up without a change, or undefined. */
function containerFailure(c: ContainerStatus): { reason: string; detail: string } | undefined {
  const reason = c.state?.waiting?.reason
  if (reason && POD_FAILURES.has(reason)) {
    const last = c.lastState?.terminated
    const detail = reason === 'CrashLoopBackOff' && last ? exited(last) : (c.state?.waiting?.message ?? '')
    return { reason, detail }
  }
  const now = c.state?.terminated
  if (now && (c.restartCount ?? 0) >= CRASH_LOOP_RESTARTS) {
    return { reason: 'CrashLoopBackOff', detail: `${exited(now)} (restarted ${c.restartCount} times)` }
  }
  return undefined
}

/**
 * The first terminal container failure among the pods, worded with what the kubelet said, or a
 * pod the scheduler cannot place (Unschedulable: transient while a cluster autoscaler adds a
 * node, so the wait tolerates it for its wait-window).
 */
export function podFailure(pods: readonly KubeObject[]): { reason: string; message: string } | undefined {
  for (const pod of pods) {
    const status = pod.status ?? {}
    const conditions = (Array.isArray(status['conditions']) ? status['conditions'] : []) as {
      type?: string
      status?: string
      reason?: string
      message?: string
    }[]
    const scheduled = conditions.find((c) => c.type === 'PodScheduled')
    if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
      return {
        reason: 'Unschedulable',
        message: `pod ${pod.metadata?.name ?? '?'}: ${scheduled.message ?? 'no node can run it'}`,
      }
    }
    for (const list of [status['initContainerStatuses'], status['containerStatuses']]) {
      for (const c of (Array.isArray(list) ? list : []) as ContainerStatus[]) {
        const failure = containerFailure(c)
        if (!failure) continue
        return {
          reason: failure.reason,
          message: `pod ${pod.metadata?.name ?? '?'} container ${c.name ?? '?'}: ${failure.detail}`.replace(/: $/, ''),
        }
      }
    }
  }
  return undefined
}
