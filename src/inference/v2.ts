// The V2 (Open Inference Protocol) endpoint of a deployed model: server ready, model ready, infer.
// Serving stacks answer 404 (no route yet), 503 or 400 (MLServer: model not ready) for a moment
// after the controller says Ready (kserve#1658), so each call retries with backoff within a
// bounded time before judging. `ingress-host` is sent as Host when the URL is an ingress IP.
import { Agent, request, type Dispatcher } from 'undici'
import { systemClock, type Clock } from '../util/clock.js'
import { DeployError, errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { V2Request, V2Response } from './request.js'

export interface V2ClientOptions {
  readonly baseUrl: string
  /** Host header for an ingress addressed by IP. */
  readonly hostHeader?: string
  readonly log: Logger
  readonly clock?: Clock
  readonly dispatcher?: Dispatcher
  /** One request's time limit. */
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
}

export class V2Client {
  private readonly clock: Clock
  private readonly dispatcher: Dispatcher
  private readonly base: string

  constructor(private readonly options: V2ClientOptions) {
    this.clock = options.clock ?? systemClock
    const timeout = options.requestTimeoutMs ?? 30_000
    this.dispatcher =
      options.dispatcher ?? new Agent({ connect: { timeout }, headersTimeout: timeout, bodyTimeout: timeout })
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
    if (!this.options.dispatcher) await this.dispatcher.close()
  }

  private async call(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    options: CallOptions,
    retryable: (status: number) => boolean,
  ): Promise<{ answer: Answer; latencyMs: number; attempts: number }> {
    const started = this.clock.now()
    let last: string
    for (let attempt = 1; ; attempt++) {
      options.signal?.throwIfAborted()
      const sent = this.clock.now()
      let status: number | undefined
      try {
        const answer = await this.once(method, path, body, options.signal)
        const latencyMs = this.clock.now() - sent
        if (answer.status >= 200 && answer.status < 300) return { answer, latencyMs, attempts: attempt }
        status = answer.status
        last = `HTTP ${answer.status}${answer.body ? `: ${errorText(answer.body)}` : ''}`
        if (!retryable(answer.status)) throw new V2Error(`${this.where(path)} answered ${last}`, answer.status)
      } catch (err) {
        if (err instanceof V2Error) throw err
        options.signal?.throwIfAborted()
        last = connectionText(err)
      }
      const elapsed = this.clock.now() - started
      const delay = Math.min(2_000, 100 * 2 ** (attempt - 1))
      if (elapsed + delay > options.budgetMs) {
        throw new V2Error(
          `${this.where(path)} did not succeed within ${Math.round(options.budgetMs / 1000)} s (${attempt} attempts); last answer: ${last}`,
          status,
        )
      }
      this.options.log.debug(`${method} ${path}: ${last}; retrying in ${delay} ms`)
      await this.clock.sleep(delay, options.signal)
    }
  }

  private async once(method: string, path: string, body: string | undefined, signal?: AbortSignal): Promise<Answer> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.options.hostHeader) headers['host'] = this.options.hostHeader
    const res = await request(this.base + path, { method, headers, body, signal, dispatcher: this.dispatcher })
    return { status: res.statusCode, body: await res.body.text() }
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

function connectionText(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } }
  const code = e?.cause?.code ?? e?.code
  return code ? `${code} (${errorMessage(err)})` : errorMessage(err)
}
