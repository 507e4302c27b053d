// The one HTTP transport of the action's clients (MLflow, registries, GitHub, the inference
// endpoint), over undici: one dispatcher (custom CA, explicit insecure TLS, proxies from the
// environment), bounded timeouts, cancellation, and util/retry.ts's policy for transient failures
// of idempotent requests. Bodies are streams; callers decide how to read them.
import { readFileSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { rootCertificates } from 'node:tls'
import { Agent, EnvHttpProxyAgent, request, type Dispatcher } from 'undici'
import { errorCode } from './net-errors.js'
import {
  DEFAULT_RETRY,
  NO_RETRY,
  isIdempotent,
  isRetryableCode,
  isRetryableStatus,
  retrying,
  type RetryPolicy,
} from './retry.js'

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
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const label = `${req.method} ${redact(req.url)}`
    return retrying<HttpResponse>(
      isIdempotent(req) ? this.retry : NO_RETRY,
      async () => {
        let res: HttpResponse
        try {
          res = await this.once(req)
        } catch (err) {
          if (!(err instanceof HttpConnectionError) || !isRetryableCode(err.code)) throw err
          return {
            retry: err.code,
            giveUp: () => {
              throw err
            },
          }
        }
        if (!isRetryableStatus(res.status)) return { done: res }
        return {
          retry: `HTTP ${res.status}`,
          retryAfter: res.headers['retry-after'],
          giveUp: () => res,
          release: () => res.discard(),
        }
      },
      {
        signal: req.signal,
        sleep: this.options.sleep,
        now: this.options.now,
        onRetry: (why, attempt, delay) => this.options.onRetry?.(`${label}: ${why}`, attempt, delay),
      },
    )
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
  const message = (err as { message?: string } | undefined)?.message ?? String(err)
  return new HttpConnectionError(url, errorCode(err) ?? 'UNKNOWN', `${redact(url)}: ${message}`, err)
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
