// Time as a dependency: waits and backoffs take a Clock so tests can drive them.

export interface Clock {
  /** Milliseconds, monotonic enough for measuring waits. */
  now(): number
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const timer = setTimeout(done, ms)
      function done() {
        signal?.removeEventListener('abort', abort)
        resolve()
      }
      function abort() {
        clearTimeout(timer)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', abort, { once: true })
    }),
}

/** Thrown when a bounded wait runs out of time; `what` says what was awaited. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError'
}

/**
 * A signal that aborts with a TimeoutError after `ms` on `clock`, or when `parent` aborts.
 * Call `dispose()` when done so the timer does not outlive the wait.
 */
export function deadline(
  clock: Clock,
  ms: number,
  what: string,
  parent?: AbortSignal,
): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController()
  const stop = new AbortController()
  clock.sleep(ms, stop.signal).then(
    () => controller.abort(new TimeoutError(what)),
    () => undefined,
  )
  const onParent = () => controller.abort(parent!.reason)
  if (parent?.aborted) onParent()
  else parent?.addEventListener('abort', onParent, { once: true })
  return {
    signal: controller.signal,
    dispose() {
      stop.abort()
      parent?.removeEventListener('abort', onParent)
    },
  }
}
