// Waiting on one object with a watch, not polling. A watch is an unreliable stream: the server (or
// client-node's 30 s inactivity timer) ends it, connections drop, and an old resourceVersion gets
// 410 Gone. So: list once, watch from the list's resourceVersion, re-watch from the last one seen
// when the stream closes, relist on 410, and stop at the first verdict, the deadline or a cancel.
import { TimeoutError, deadline, type Clock } from '../util/clock.js'
import { DeployError, errorMessage } from '../util/errors.js'
import { formatDuration } from '../util/duration.js'
import type { Logger } from '../util/logger.js'
import { backoffDelay } from '../util/retry.js'
import type { KubeObject } from './readiness.js'
import { KubeApiError, KubeUnreachableError, type ListResult, type WatchEventType } from './kube.js'

/** The object's stream: `Kube.list` / `Kube.watch` bound to one object, or a fake in tests. */
export interface ObjectStream<T = KubeObject> {
  list(signal: AbortSignal): Promise<ListResult<T>>
  watch(
    resourceVersion: string,
    /** `resourceVersion` when the event's object does not carry it (a snapshot of several). */
    onEvent: (type: WatchEventType, object: unknown, resourceVersion?: string) => void,
    signal: AbortSignal,
  ): Promise<void>
}

/**
 * A stream that reads again every `intervalMs`: for a state spread over several objects (KServe
 * Standard mode: the isvc, its Deployment, ReplicaSets and pods) that no one watch shows.
 */
export function pollingStream<T>(
  read: (signal: AbortSignal) => Promise<T | undefined>,
  clock: Clock,
  intervalMs = 2_000,
): ObjectStream<T> {
  return {
    list: async (signal) => ({ object: await read(signal), resourceVersion: '' }),
    async watch(_rv, onEvent, signal) {
      for (;;) {
        await clock.sleep(intervalMs, signal)
        const object = await read(signal)
        onEvent(object === undefined ? 'DELETED' : 'MODIFIED', object)
      }
    },
  }
}

export type Verdict =
  { state: 'pending'; detail: string } | { state: 'done' } | { state: 'failed'; reason: string; message: string }

export interface WaitOptions<T = KubeObject> {
  readonly timeoutMs: number
  readonly clock: Clock
  readonly log: Logger
  /** What is awaited, for messages: "Service default/wine to become ready". */
  readonly what: string
  readonly signal?: AbortSignal
  /** Evidence for a failure message: conditions, events. Its own errors are reported, not thrown. */
  readonly diagnose?: (object: T | undefined) => Promise<string[]>
}

export interface WaitResult<T = KubeObject> {
  readonly object: T | undefined
  readonly elapsedMs: number
  /** Watches opened (1 + reconnects) and relists done, for the log and tests. */
  readonly watches: number
  readonly relists: number
}

/** The wait ended without success: a failed verdict or the timeout. */
export class WaitError extends DeployError {
  constructor(
    message: string,
    readonly reason: string,
    /** The last state seen: the object, or a snapshot of several (pollingStream). */
    readonly object: unknown,
    /** Conditions and events gathered for the log. */
    readonly evidence: readonly string[],
  ) {
    super(message)
  }
}

const GONE = 410

// Between watch reconnects after a transient failure (the count resets on every event); the
// deadline, not a number of attempts, bounds the wait.
const WATCH_BACKOFF = { baseDelayMs: 500, maxDelayMs: 5_000 }

export async function waitFor<T = KubeObject>(
  stream: ObjectStream<T>,
  check: (object: T | undefined) => Verdict,
  options: WaitOptions<T>,
): Promise<WaitResult<T>> {
  const { clock, log } = options
  const started = clock.now()
  const bound = deadline(clock, options.timeoutMs, options.what, options.signal)
  const signal = bound.signal
  let object: T | undefined
  let verdict: Verdict = { state: 'pending', detail: 'not read yet' }
  let watches = 0
  let relists = 0
  let lastDetail = ''
  const judge = (o: T | undefined) => {
    object = o
    verdict = check(o)
    if (verdict.state === 'pending' && verdict.detail !== lastDetail) {
      lastDetail = verdict.detail
      log.info(`${options.what}: ${verdict.detail}`)
    }
  }

  try {
    let resourceVersion = ''
    let needList = true
    let failures = 0
    while (verdict.state === 'pending') {
      try {
        if (needList) {
          const listed = await stream.list(signal)
          resourceVersion = listed.resourceVersion
          needList = false
          judge(listed.object)
          if (verdict.state !== 'pending') break
        }
        const stop = new AbortController()
        let streamError: string | undefined
        watches++
        await stream
          .watch(
            resourceVersion,
            (type, raw, rv) => {
              if (stop.signal.aborted) return
              const obj = raw as (KubeObject & { code?: number }) | undefined
              if (type === 'ERROR') {
                // A Status object: 410 means our resourceVersion is too old for the watch cache.
                if (obj?.code === GONE) needList = true
                else streamError = `watch error event: ${JSON.stringify(obj).slice(0, 300)}`
                stop.abort()
                return
              }
              resourceVersion = rv ?? obj?.metadata?.resourceVersion ?? resourceVersion
              if (type === 'BOOKMARK') return
              failures = 0
              judge(type === 'DELETED' ? undefined : (raw as T))
              if (verdict.state !== 'pending') stop.abort()
            },
            AbortSignal.any([signal, stop.signal]),
          )
          .catch((err) => {
            if (!stop.signal.aborted || signal.aborted) throw err
          })
        if (needList) {
          relists++
          log.debug(`${options.what}: resourceVersion ${resourceVersion} expired (410 Gone), relisting`)
        }
        if (streamError) throw new KubeUnreachableError('WatchError', streamError)
      } catch (err) {
        if (signal.aborted) throw signal.reason
        if ((err as { statusCode?: number }).statusCode === GONE) {
          needList = true
          relists++
          continue
        }
        // Permanent answers (RBAC, not installed) end the wait; a dropped connection is retried.
        if (!isTransient(err)) throw err
        failures++
        const backoff = backoffDelay(WATCH_BACKOFF, failures)
        log.debug(`${options.what}: watch failed (${errorMessage(err)}), retrying in ${backoff} ms`)
        await clock.sleep(backoff, signal)
      }
    }
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err
    const evidence = await gather(options, object)
    throw new WaitError(
      `${options.what}: not done after ${formatDuration(options.timeoutMs)}; last state: ${lastDetail || 'unknown'}`,
      'Timeout',
      object,
      evidence,
    )
  } finally {
    bound.dispose()
  }

  // (The closures above assign `verdict`; TypeScript cannot see that.)
  const final = verdict as Verdict
  if (final.state === 'failed') {
    const v = final
    const evidence = await gather(options, object)
    throw new WaitError(
      `${options.what}: failed: ${v.reason}${v.message ? `: ${v.message}` : ''}`,
      v.reason,
      object,
      evidence,
    )
  }
  return { object, elapsedMs: clock.now() - started, watches, relists }
}

async function gather<T>(options: WaitOptions<T>, object: T | undefined): Promise<string[]> {
  if (!options.diagnose) return []
  try {
    const lines = await options.diagnose(object)
    for (const line of lines) options.log.info(line)
    return lines
  } catch (err) {
    const line = `(could not gather diagnostics: ${errorMessage(err)})`
    options.log.warning(line)
    return [line]
  }
}

function isTransient(err: unknown): boolean {
  return err instanceof KubeUnreachableError || (err instanceof KubeApiError && err.status >= 500)
}
