// The V2 (Open Inference Protocol) endpoint of a deployed model: server ready, model ready, infer.
// Serving stacks answer 404 (no route yet), 503 or 400 (MLServer: model not ready) for a moment
// after the controller says Ready (kserve#1658), so each call retries with backoff within a
// bounded time before judging. `ingress-host` is sent as Host when the URL is an ingress IP.
import { systemClock, type Clock } from '../util/clock.js'
import { DeployError } from '../util/errors.js'
import { HttpConnectionError, UndiciTransport, type HttpTransport } from '../util/http.js'
import type { Logger } from '../util/logger.js'
import { NO_RETRY, retrying, type Attempt } from '../util/retry.js'
import type { V2Request, V2Response } from './request.js'

export interface V2ClientOptions {
  readonly baseUrl: string
  /** Host header for an ingress addressed by IP. */
  readonly hostHeader?: string
  readonly log: Logger
  readonly clock?: Clock
  /** A transport without retries of its own: each call here retries by its own rules. */
  readonly http?: HttpTransport
  /** One request's time limit (for the transport made when none is given). */
  readonly requestTimeoutMs?: number
}

export interface CallOptions {
  /** Keep retrying transient answers this long. */
  readonly budgetMs: number
  readonly signal?: AbortSignal
}

export class V2Error extends DeployError {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message)
  }
}

interface Answer {
  status: number
  body: string
  retryAfter?: string
}

/** A successful call: its answer, its latency and how many attempts it took. */
interface Call {
  answer: Answer
  latencyMs: number
  attempts: number
}

export class V2Client {
  private readonly clock: Clock
  private readonly http: HttpTransport
  /** The transport made here (none given), closed by close(). */
  private readonly ownTransport?: UndiciTransport
  private readonly base: string

  constructor(private readonly options: V2ClientOptions) {
    this.clock = options.clock ?? systemClock
    const timeout = options.requestTimeoutMs ?? 30_000
    if (options.http) this.http = options.http
    else
      this.http = this.ownTransport = new UndiciTransport({
        retry: NO_RETRY,
        connectTimeoutMs: timeout,
        headersTimeoutMs: timeout,
        bodyTimeoutMs: timeout,
      })
    this.base = options.baseUrl.replace(/\/+$/, '')
  }

  /** Waits for /v2/health/ready, then /v2/models/<model>/ready. */
  async waitReady(model: string, options: CallOptions): Promise<{ elapsedMs: number; attempts: number }> {
    const started = this.clock.now()
    const server = await this.call('GET', '/v2/health/ready', undefined, options, READY_RETRY)
    const left = Math.max(0, options.budgetMs - (this.clock.now() - started))
    const ready = await this.call(
      'GET',
      `/v2/models/${encodeURIComponent(model)}/ready`,
      undefined,
      { ...options, budgetMs: left },
      READY_RETRY,
    )
    return { elapsedMs: this.clock.now() - started, attempts: server.attempts + ready.attempts }
  }

  /** POSTs an inference request; returns the response and the successful call's latency. */
  async infer(
    model: string,
    body: V2Request,
    options: CallOptions,
  ): Promise<{ response: V2Response; latencyMs: number; attempts: number }> {
    const path = `/v2/models/${encodeURIComponent(model)}/infer`
    const res = await this.call('POST', path, JSON.stringify(body), options, INFER_RETRY)
    let response: V2Response
    try {
      response = JSON.parse(res.answer.body) as V2Response
    } catch {
      throw new V2Error(
        `${this.where(path)} answered 200 with a body that is not JSON: ${res.answer.body.slice(0, 200)}`,
        200,
      )
    }
    return { response, latencyMs: res.latencyMs, attempts: res.attempts }
  }

  async close(): Promise<void> {
    await this.ownTransport?.close()
  }

  /**
   * One call, retried while the answer is transient (`retryable` statuses, no connection yet)
   * within the budget; the backoff is util/retry.ts's, bounded by time alone.
   */
  private async call(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    options: CallOptions,
    retryable: (status: number) => boolean,
  ): Promise<Call> {
    const policy = { retries: Infinity, baseDelayMs: 100, maxDelayMs: 2_000, budgetMs: options.budgetMs }
    const attempt = async (n: number): Promise<Attempt<Call>> => {
      const sent = this.clock.now()
      let status: number | undefined
      let retryAfter: string | undefined
      let last: string
      try {
        const answer = await this.once(method, path, body, options.signal)
        const latencyMs = this.clock.now() - sent
        if (answer.status >= 200 && answer.status < 300) return { done: { answer, latencyMs, attempts: n } }
        status = answer.status
        retryAfter = answer.retryAfter
        last = `HTTP ${answer.status}${answer.body ? `: ${errorText(answer.body)}` : ''}`
        if (!retryable(answer.status)) throw new V2Error(`${this.where(path)} answered ${last}`, answer.status)
      } catch (err) {
        // The route or the DNS name may not exist yet: no answer is retried like a 404.
        if (!(err instanceof HttpConnectionError)) throw err
        last = `${err.code} (${err.message.replace(/^.*?: /, '')})`
      }
      return {
        retry: last,
        retryAfter,
        giveUp: () => {
          throw new V2Error(
            `${this.where(path)} did not succeed within ${Math.round(options.budgetMs / 1000)} s (${n} attempts); last answer: ${last}`,
            status,
          )
        },
      }
    }
    return retrying(policy, attempt, {
      signal: options.signal,
      sleep: (ms, signal) => this.clock.sleep(ms, signal),
      now: () => this.clock.now(),
      onRetry: (why, _n, delay) => this.options.log.debug(`${method} ${path}: ${why}; retrying in ${delay} ms`),
    })
  }

  private async once(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    signal?: AbortSignal,
  ): Promise<Answer> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.options.hostHeader) headers['host'] = this.options.hostHeader
    const res = await this.http.request({ method, url: this.base + path, headers, body, signal })
    return { status: res.status, body: await res.text(), retryAfter: res.headers['retry-after'] }
  }

  private where(path: string): string {
    return `${this.base}${path}${this.options.hostHeader ? ` (Host: ${this.options.hostHeader})` : ''}`
  }
}

// Ready probes: 400 is MLServer's "not ready", 404 an unknown model or a route not there yet.
const READY_RETRY = (s: number) => s === 400 || s === 404 || s === 429 || s >= 500
// Inference: a 400 is a real answer about the request (schema enforcement), so only routing and
// availability are retried.
const INFER_RETRY = (s: number) => s === 404 || s === 429 || s === 502 || s === 503 || s === 504

function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; detail?: unknown }
    const text = parsed.error ?? parsed.detail
    if (text !== undefined) return (typeof text === 'string' ? text : JSON.stringify(text)).slice(0, 300)
  } catch {
    // not JSON
  }
  return body.slice(0, 300).trim()
}
