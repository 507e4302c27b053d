// Pod states that decide a rollout before its controller does: KServe Standard mode reports
// only Deployment availability, and Knative reads a waiting revision's pods (a pull error, a
// container that cannot be created) only at its progress deadline. (A container that exits is
// another matter: Knative marks the revision failed at its first exit.)
import type { KubeObject } from './readiness.js'

// Container states after which the pod will not come up without a change.
const POD_FAILURES = new Set([
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
])

// ErrImagePull is the kubelet's first try, retried after a back-off (ImagePullBackOff, up to 10 s
// later): a registry blip must not fail a deploy. But when the registry has answered that the
// image does not exist or may not be pulled, the retry will say the same: fail at once.
const FINAL_PULL_ERROR = /code = NotFound|not found|pull access denied|unauthorized|authorization failed|denied:/i

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
  const final = reason === 'ErrImagePull' && FINAL_PULL_ERROR.test(c.state?.waiting?.message ?? '')
  if (reason && (POD_FAILURES.has(reason) || final)) {
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
