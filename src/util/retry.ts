// The one retry policy of every outside call: what is worth a second attempt, how long to wait
// before it (exponential backoff with jitter, at least what Retry-After asks), and when to stop
// (a number of attempts, a total time, an aborted signal). `retrying` is the one retry loop; each
// client says only what one attempt came to.
import { systemClock } from './clock.js'

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  /** Give up retrying once this much time has passed since the first attempt. */
  readonly budgetMs: number
}

// MLflow's Python client retries 5 times with backoff factor 2; a deploy has a timeout of its own,
// so the budget is bounded in time too.
export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 500, maxDelayMs: 10_000, budgetMs: 60_000 }

/** One attempt only: for a request whose caller runs its own `retrying` around it. */
export const NO_RETRY: RetryPolicy = { retries: 0, baseDelayMs: 0, maxDelayMs: 0, budgetMs: 0 }

// Statuses that say "later" (RFC 9110 §15.5.9, §15.6; RFC 6585 §4). 501 is a final "never".
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504])

// Connection-level failures worth repeating: the peer dropped a connection that was working.
// Refused connections, unknown hosts and TLS failures are configuration errors: failing fast
// with a clear message beats a minute of backoff.
const RETRY_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
])

export function isRetryableStatus(status: number): boolean {
  return RETRY_STATUSES.has(status)
}

/** Whether a connection failure with this system/undici code is worth another attempt. */
export function isRetryableCode(code: string): boolean {
  return RETRY_CODES.has(code)
}

/**
 * Whether repeating the request is harmless: GET/HEAD/PUT/DELETE are idempotent (RFC 9110
 * §9.2.2); a POST that only reads (a token request, a search) may say so.
 */
export function isIdempotent(req: { readonly method: string; readonly idempotent?: boolean }): boolean {
  return req.idempotent ?? ['GET', 'HEAD', 'PUT', 'DELETE'].includes(req.method)
}

/**
 * Exponential backoff for retry number `attempt` (1-based), with jitter: half fixed, half random,
 * so clients that failed together do not come back together.
 */
export function backoffDelay(
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  attempt: number,
  random: () => number = Math.random,
): number {
  const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return Math.round(backoff / 2 + (random() * backoff) / 2)
}

/**
 * Delay before retry number `attempt`: the backoff, or more when a Retry-After header asks for it
 * (capped), or undefined when the policy says stop (attempts or time used up).
 */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  elapsedMs: number,
  retryAfter: string | undefined,
  random: () => number = Math.random,
): number | undefined {
  if (attempt > policy.retries) return undefined
  let delay = backoffDelay(policy, attempt, random)
  const asked = parseRetryAfter(retryAfter)
  if (asked !== undefined) delay = Math.max(delay, Math.min(asked, policy.maxDelayMs))
  if (elapsedMs + delay > policy.budgetMs) return undefined
  return Math.round(delay)
}

/** Retry-After (RFC 9110 §10.2.3): seconds, or an HTTP date; in milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** What one attempt came to: the result, or a reason to try again. */
export type Attempt<T> =
  | { readonly done: T }
  | {
      /** Why, for the log: "HTTP 503", "ECONNRESET", "got 10 bytes, listed 12". */
      readonly retry: string
      /** The server's Retry-After header, if it sent one. */
      readonly retryAfter?: string
      /** What the call comes to when the policy allows no more attempts: a result, or a throw. */
      readonly giveUp: () => T
      /** Frees what this attempt holds (an unread body) before the next one. */
      readonly release?: () => Promise<void>
    }

export interface RetryOptions {
  /** Cancels the wait between attempts (and is checked before each attempt). */
  readonly signal?: AbortSignal
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  readonly now?: () => number
  /** Told about each retry, e.g. to log it at debug level. */
  readonly onRetry?: (why: string, attempt: number, delayMs: number) => void
}

/** Runs `attempt` (given its 1-based number) until it is done, throws, or the policy says stop. */
export async function retrying<T>(
  policy: RetryPolicy,
  attempt: (n: number) => Promise<Attempt<T>>,
  options: RetryOptions = {},
): Promise<T> {
  const now = options.now ?? Date.now
  const sleep = options.sleep ?? systemClock.sleep
  const started = now()
  for (let n = 1; ; n++) {
    options.signal?.throwIfAborted()
    const outcome = await attempt(n)
    if ('done' in outcome) return outcome.done
    const delay = retryDelay(policy, n, now() - started, outcome.retryAfter)
    if (delay === undefined) return outcome.giveUp()
    await outcome.release?.()
    options.onRetry?.(outcome.retry, n, delay)
    await sleep(delay, options.signal)
  }
}
