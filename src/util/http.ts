// A small HTTP transport over undici: one dispatcher (custom CA, explicit insecure TLS, proxies
// from the environment), bounded timeouts, cancellation, and retries with exponential backoff for
// transient failures of idempotent requests. Bodies are streams; callers decide how to read them.
import { systemClock } from './clock.js'
import { readFileSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { rootCertificates } from 'node:tls'
import { Agent, EnvHttpProxyAgent, request, type Dispatcher } from 'undici'

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface HttpRequest {
  readonly method: HttpMethod
  readonly url: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
  readonly signal?: AbortSignal
  /**
   * Whether repeating the request is harmless. Defaults to true for GET/HEAD/PUT/DELETE; a POST
   * that only reads (a token request, a search) may opt in.
   */
  readonly idempotent?: boolean
}

export interface HttpResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string | undefined>>
  /** The body as a stream; read it, or call `discard()` to free the connection. */
  readonly body: Readable
  text(): Promise<string>
  discard(): Promise<void>
}

export interface HttpTransport {
  /** Answers every HTTP status (after retries); throws `HttpConnectionError` when no answer came. */
  request(req: HttpRequest): Promise<HttpResponse>
}

/** No HTTP answer at all: refused, reset, DNS, TLS, timeout. `code` is the system/undici code. */
export class HttpConnectionError extends Error {
  override readonly name = 'HttpConnectionError'
  constructor(
    readonly url: string,
    readonly code: string,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message)
  }
}

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

export function isRetryableError(err: unknown): boolean {
  return err instanceof HttpConnectionError && RETRY_CODES.has(err.code)
}

export function isIdempotent(req: Pick<HttpRequest, 'method' | 'idempotent'>): boolean {
  return req.idempotent ?? ['GET', 'HEAD', 'PUT', 'DELETE'].includes(req.method)
}

/**
 * Delay before retry number `attempt` (1-based): exponential with full jitter, at least what a
 * Retry-After header asks for (capped), or undefined when the policy says stop.
 */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  elapsedMs: number,
  retryAfter: string | undefined,
  random: () => number = Math.random,
): number | undefined {
  if (attempt > policy.retries) return undefined
  const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  let delay = backoff / 2 + (random() * backoff) / 2
  const asked = parseRetryAfter(retryAfter)
  if (asked !== undefined) delay = Math.max(delay, Math.min(asked, policy.maxDelayMs))
  if (elapsedMs + delay > policy.budgetMs) return undefined
  return Math.round(delay)
}

function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

export interface TransportOptions {
  /** PEM file of CAs to trust in addition to the system ones. */
  readonly caCertPath?: string
  /** Skip TLS verification (explicit opt-in only). */
  readonly insecureTls?: boolean
  readonly connectTimeoutMs?: number
  /** Time to wait for response headers, and for each chunk of a body. */
  readonly headersTimeoutMs?: number
  readonly bodyTimeoutMs?: number
  readonly retry?: RetryPolicy
  /** Environment for HTTP(S)_PROXY / NO_PROXY. */
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  readonly now?: () => number
  /** Told about each retry, e.g. to log it at debug level. */
  readonly onRetry?: (what: string, attempt: number, delayMs: number) => void
}

export class UndiciTransport implements HttpTransport {
  private readonly dispatcher: Dispatcher
  private readonly retry: RetryPolicy
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  private readonly now: () => number

  constructor(private readonly options: TransportOptions = {}) {
    // An extra CA must not drop the system ones (a proxy or a public endpoint may still need them).
    const tls = {
      ...(options.caCertPath ? { ca: [...rootCertificates, readFileSync(options.caCertPath, 'utf8')] } : {}),
      ...(options.insecureTls ? { rejectUnauthorized: false } : {}),
      timeout: options.connectTimeoutMs ?? 15_000,
    }
    const common = {
      connect: tls,
      headersTimeout: options.headersTimeoutMs ?? 120_000,
      bodyTimeout: options.bodyTimeoutMs ?? 120_000,
    }
    const env = options.env ?? {}
    const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => env[k])
    this.dispatcher = proxied
      ? new EnvHttpProxyAgent({
          ...common,
          requestTls: tls,
          httpProxy: env.HTTP_PROXY ?? env.http_proxy,
          httpsProxy: env.HTTPS_PROXY ?? env.https_proxy,
          noProxy: env.NO_PROXY ?? env.no_proxy,
        })
      : new Agent(common)
    this.retry = options.retry ?? DEFAULT_RETRY
    this.sleep = options.sleep ?? systemClock.sleep
    this.now = options.now ?? Date.now
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const started = this.now()
    const retryable = isIdempotent(req)
    for (let attempt = 1; ; attempt++) {
      let retryAfter: string | undefined
      let what: string
      try {
        const res = await this.once(req)
        if (!retryable || !isRetryableStatus(res.status)) return res
        retryAfter = res.headers['retry-after']
        const delay = retryDelay(this.retry, attempt, this.now() - started, retryAfter)
        if (delay === undefined) return res
        await res.discard()
        what = `HTTP ${res.status}`
        this.options.onRetry?.(`${req.method} ${redact(req.url)}: ${what}`, attempt, delay)
        await this.sleep(delay, req.signal)
      } catch (err) {
        req.signal?.throwIfAborted()
        if (!retryable || !isRetryableError(err)) throw err
        const delay = retryDelay(this.retry, attempt, this.now() - started, undefined)
        if (delay === undefined) throw err
        what = (err as HttpConnectionError).code
        this.options.onRetry?.(`${req.method} ${redact(req.url)}: ${what}`, attempt, delay)
        await this.sleep(delay, req.signal)
      }
    }
  }

  private async once(req: HttpRequest): Promise<HttpResponse> {
    let res: Dispatcher.ResponseData
    try {
      res = await request(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: req.signal,
        dispatcher: this.dispatcher,
      })
    } catch (err) {
      req.signal?.throwIfAborted()
      throw connectionError(req.url, err)
    }
    const headers: Record<string, string | undefined> = {}
    for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v
    const body = res.body
    return {
      status: res.statusCode,
      headers,
      body,
      text: async () => {
        try {
          return await body.text()
        } catch (err) {
          req.signal?.throwIfAborted()
          throw connectionError(req.url, err)
        }
      },
      discard: async () => {
        await body.dump().catch(() => undefined)
      },
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close()
  }
}

/** Wraps whatever undici or the socket threw into an HttpConnectionError with a stable code. */
export function connectionError(url: string, err: unknown): HttpConnectionError {
  if (err instanceof HttpConnectionError) return err
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } }
  // undici wraps socket errors ("other side closed") and keeps the system error as `cause`.
  const code = e?.cause?.code && e.code === 'UND_ERR_SOCKET' ? e.cause.code : (e?.code ?? e?.cause?.code ?? 'UNKNOWN')
  const message = e?.message ?? String(err)
  return new HttpConnectionError(url, code, `${redact(url)}: ${message}`, err)
}

/** The URL without credentials or query string, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    u.username = ''
    u.password = ''
    u.search = ''
    return u.toString()
  } catch {
    return url
  }
}
