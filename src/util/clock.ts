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

/**
 * One deadline for a whole rollout: the wait and the smoke test share what is left of `totalMs`
 * minus a reserve that only the rollback may use, so undoing a late failure still has time.
 */
export class Budget {
  private readonly started: number

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    readonly totalMs: number,
    readonly reserveMs = rollbackReserveMs(totalMs),
  ) {
    this.started = clock.now()
  }

  elapsedMs(): number {
    return this.clock.now() - this.started
  }

  /** What the forward steps (wait, smoke test) may still use. */
  forwardMs(): number {
    return Math.max(0, this.totalMs - this.reserveMs - this.elapsedMs())
  }

  /** What a rollback may use: everything left, never less than the reserve. */
  rollbackMs(): number {
    return Math.max(this.reserveMs, this.totalMs - this.elapsedMs())
  }
}

/**
 * The rollback's share of a timeout: a fifth, at least 10 s (a traffic switch takes seconds) and
 * at most 2 minutes (a Standard-mode Deployment rolling back), and never more than half.
 */
export function rollbackReserveMs(totalMs: number): number {
  return Math.round(Math.min(Math.max(totalMs / 5, 10_000), 120_000, totalMs / 2))
}
