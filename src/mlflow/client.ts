// The MLflow tracking/registry REST client: typed calls, credentials on every request (one retry
// after a 401 when a token provider can fetch a fresh token), and every failure turned into one
// line that says what to fix (mlflow/errors.ts).
import type { Readable } from 'node:stream'
import { HttpConnectionError, type HttpMethod, type HttpResponse, type HttpTransport } from '../util/http.js'
import type { Logger } from '../util/logger.js'
import type { AuthProvider } from './auth.js'
import { MlflowError, connectionMessage, httpFailureMessage } from './errors.js'

export interface ModelVersion {
  name: string
  version: string
  creation_timestamp?: number | string
  last_updated_timestamp?: number | string
  current_stage?: string
  description?: string
  source?: string
  run_id?: string
  status?: string
  status_message?: string
  tags?: { key: string; value: string }[]
  aliases?: string[]
  model_id?: string
}

export interface RegisteredModel {
  name: string
  latest_versions?: ModelVersion[]
  tags?: { key: string; value: string }[]
  aliases?: { alias: string; version: string }[]
}

export interface Run {
  info: { run_id: string; experiment_id: string; artifact_uri?: string; status?: string; lifecycle_stage?: string }
  data?: { tags?: { key: string; value: string }[] }
  outputs?: { model_outputs?: { model_id: string; step?: number }[] }
}

export interface LoggedModel {
  info: {
    model_id: string
    experiment_id?: string
    name?: string
    artifact_uri?: string
    status?: string
    source_run_id?: string
  }
}

export interface ArtifactEntry {
  path: string
  is_dir?: boolean
  file_size?: number | string
}

export type Query = Record<string, string | number | readonly string[] | undefined>

/** base + path + query, with every value percent-encoded (names may hold spaces, '/', unicode). */
export function apiUrl(base: string, path: string, query: Query = {}): string {
  const pairs: string[] = []
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue
    // Repeated fields are repeated keys (stages=Staging&stages=Production), as MLflow expects.
    for (const v of Array.isArray(value) ? value : [value])
      pairs.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`)
  }
  return `${base.replace(/\/+$/, '')}${path}${pairs.length ? `?${pairs.join('&')}` : ''}`
}

/** An artifact path as URL path segments, each encoded, the slashes kept. */
export function encodePath(path: string): string {
  return path
    .split('/')
    .filter((s) => s.length > 0)
    .map(encodeURIComponent)
    .join('/')
}

/** A search filter string literal: single quotes unless the value holds one (MLflow takes both). */
export function filterLiteral(value: string): string {
  return value.includes("'") ? `"${value}"` : `'${value}'`
}

/** One page of a paged MLflow answer: its items under `K`, and the token of the next page. */
type Page<K extends string, T> = { [key in K]?: T[] } & { next_page_token?: string }

/** Every item of a paged MLflow list, following next_page_token until `limit` items. */
async function pages<K extends string, T>(
  key: K,
  limit: number,
  page: (pageToken: string | undefined, room: number) => Promise<Page<K, T>>,
): Promise<T[]> {
  const out: T[] = []
  let pageToken: string | undefined
  do {
    const r = await page(pageToken, limit - out.length)
    out.push(...(r[key] ?? []))
    pageToken = r.next_page_token || undefined
  } while (pageToken && out.length < limit)
  return out
}

export interface MlflowClientOptions {
  readonly trackingUri: string
  /** Where the registry lives when it is not the tracking server. */
  readonly registryUri?: string
  readonly http: HttpTransport
  readonly auth: AuthProvider
  readonly log: Logger
}

/** One request to an MLflow server at `base`; `urlInput` is the input that holds its URL. */
interface MlflowRequest {
  readonly method: HttpMethod
  readonly base: string
  readonly url: string
  readonly body?: string
  readonly urlInput: string
  readonly signal?: AbortSignal
}

export class MlflowClient {
  readonly trackingUri: string
  readonly registryUri: string

  constructor(private readonly options: MlflowClientOptions) {
    this.trackingUri = options.trackingUri.replace(/\/+$/, '')
    this.registryUri = (options.registryUri ?? options.trackingUri).replace(/\/+$/, '')
  }

  get auth(): AuthProvider {
    return this.options.auth
  }

  // --- registry ---------------------------------------------------------------------------------

  async getRegisteredModel(name: string, signal?: AbortSignal): Promise<RegisteredModel> {
    const path = '/api/2.0/mlflow/registered-models/get'
    return (await this.rest<{ registered_model: RegisteredModel }>('registry', 'GET', path, { name }, signal))
      .registered_model
  }

  async searchRegisteredModels(
    filter: string | undefined,
    maxResults: number,
    signal?: AbortSignal,
  ): Promise<RegisteredModel[]> {
    const path = '/api/2.0/mlflow/registered-models/search'
    const query = { filter, max_results: maxResults }
    const r = await this.rest<{ registered_models?: RegisteredModel[] }>('registry', 'GET', path, query, signal)
    return r.registered_models ?? []
  }

  async getModelVersion(name: string, version: string, signal?: AbortSignal): Promise<ModelVersion> {
    const path = '/api/2.0/mlflow/model-versions/get'
    return (await this.rest<{ model_version: ModelVersion }>('registry', 'GET', path, { name, version }, signal))
      .model_version
  }

  async getModelVersionByAlias(name: string, alias: string, signal?: AbortSignal): Promise<ModelVersion> {
    const path = '/api/2.0/mlflow/registered-models/alias'
    return (await this.rest<{ model_version: ModelVersion }>('registry', 'GET', path, { name, alias }, signal))
      .model_version
  }

  /** Highest version per stage; all stages when `stages` is empty. */
  async getLatestVersions(name: string, stages: readonly string[] = [], signal?: AbortSignal): Promise<ModelVersion[]> {
    const path = '/api/2.0/mlflow/registered-models/get-latest-versions'
    const query = { name, stages: stages.length ? stages : undefined }
    const r = await this.rest<{ model_versions?: ModelVersion[] }>('registry', 'GET', path, query, signal)
    return r.model_versions ?? []
  }

  /** All pages of a model-version search (bounded by `limit`). */
  async searchModelVersions(
    filter: string,
    opts: { orderBy?: readonly string[]; limit?: number } = {},
    signal?: AbortSignal,
  ): Promise<ModelVersion[]> {
    const path = '/api/2.0/mlflow/model-versions/search'
    return pages('model_versions', opts.limit ?? 1000, (page_token, room) => {
      const query = { filter, max_results: Math.min(room, 1000), order_by: opts.orderBy, page_token }
      return this.rest<Page<'model_versions', ModelVersion>>('registry', 'GET', path, query, signal)
    })
  }

  async getDownloadUri(name: string, version: string, signal?: AbortSignal): Promise<string> {
    const path = '/api/2.0/mlflow/model-versions/get-download-uri'
    return (await this.rest<{ artifact_uri: string }>('registry', 'GET', path, { name, version }, signal)).artifact_uri
  }

  async setAlias(name: string, alias: string, version: string, signal?: AbortSignal): Promise<void> {
    await this.rest('registry', 'POST', '/api/2.0/mlflow/registered-models/alias', { name, alias, version }, signal)
  }

  async setModelVersionTag(
    name: string,
    version: string,
    key: string,
    value: string,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.rest('registry', 'POST', '/api/2.0/mlflow/model-versions/set-tag', { name, version, key, value }, signal)
  }

  // --- tracking ---------------------------------------------------------------------------------

  async getRun(runId: string, signal?: AbortSignal): Promise<Run> {
    return (await this.rest<{ run: Run }>('tracking', 'GET', '/api/2.0/mlflow/runs/get', { run_id: runId }, signal)).run
  }

  async getLoggedModel(modelId: string, signal?: AbortSignal): Promise<LoggedModel> {
    const path = `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`
    return (await this.rest<{ model: LoggedModel }>('tracking', 'GET', path, {}, signal)).model
  }

  /** A run's artifacts directly under `path` (any artifact store the server can read). */
  async listRunArtifacts(runId: string, path: string, signal?: AbortSignal): Promise<ArtifactEntry[]> {
    return pages('files', Infinity, (page_token) => {
      const query = { run_id: runId, path: path || undefined, page_token }
      return this.rest<Page<'files', ArtifactEntry>>('tracking', 'GET', '/api/2.0/mlflow/artifacts/list', query, signal)
    })
  }

  async searchLoggedModels(
    experimentIds: readonly string[],
    filter: string,
    signal?: AbortSignal,
  ): Promise<LoggedModel[]> {
    return pages('models', 10_000, (page_token) => {
      const body = { experiment_ids: experimentIds, filter, page_token }
      return this.rest<Page<'models', LoggedModel>>(
        'tracking',
        'POST',
        '/api/2.0/mlflow/logged-models/search',
        body,
        signal,
      )
    })
  }

  // --- proxied artifacts (mlflow-artifacts:) ------------------------------------------------------

  /** One directory of the server's artifact store; paths in the answer are basenames. */
  async listArtifacts(base: string, path: string, signal?: AbortSignal): Promise<ArtifactEntry[]> {
    const url = apiUrl(base, '/api/2.0/mlflow-artifacts/artifacts', { path })
    return (
      (await this.call<{ files?: ArtifactEntry[] }>({ method: 'GET', base, url, urlInput: 'tracking-uri', signal }))
        .files ?? []
    )
  }

  /** Opens one artifact file; a 2xx response whose body the caller streams. */
  async openArtifact(base: string, path: string, signal?: AbortSignal): Promise<HttpResponse & { body: Readable }> {
    const url = `${base.replace(/\/+$/, '')}/api/2.0/mlflow-artifacts/artifacts/${encodePath(path)}`
    return this.send({ method: 'GET', base, url, urlInput: 'tracking-uri', signal })
  }

  // --- plumbing ---------------------------------------------------------------------------------

  /** A REST call to the registry or the tracking server (MLflow's REST API, /api/2.0/mlflow). */
  private rest<T>(
    server: 'registry' | 'tracking',
    method: HttpMethod,
    path: string,
    params: Query | Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<T> {
    const base = server === 'registry' ? this.registryUri : this.trackingUri
    const urlInput = base === this.trackingUri ? 'tracking-uri' : 'registry-uri'
    // GET takes query parameters; other methods a JSON body (MLflow's REST convention).
    const url = method === 'GET' ? apiUrl(base, path, params as Query) : apiUrl(base, path)
    const body = method === 'GET' ? undefined : JSON.stringify(params)
    return this.call<T>({ method, base, url, body, urlInput, signal })
  }

  private async call<T>(req: MlflowRequest): Promise<T> {
    const res = await this.send(req)
    const text = await res.text()
    try {
      return JSON.parse(text) as T
    } catch {
      const { method, base, url, urlInput } = req
      throw new MlflowError(
        `MLflow at ${base} answered ${method} ${new URL(url).pathname} with ${res.headers['content-type'] ?? 'no content type'} instead of MLflow JSON; is ${urlInput} the MLflow server?`,
        res.status,
      )
    }
  }

  /** Sends with credentials; returns a 2xx response or throws the mapped error. */
  private async send({ method, base, url, body, urlInput, signal }: MlflowRequest): Promise<HttpResponse> {
    const { auth, http, log } = this.options
    const server = `MLflow at ${base}`
    for (let attempt = 1; ; attempt++) {
      const authorization = await auth.authorization(signal)
      const headers: Record<string, string> = { accept: 'application/json' }
      if (authorization) headers.authorization = authorization
      if (body !== undefined) headers['content-type'] = 'application/json'
      let res: HttpResponse
      try {
        res = await http.request({
          method,
          url,
          headers,
          body,
          signal,
          idempotent: method !== 'POST' || url.endsWith('/search'),
        })
      } catch (err) {
        if (err instanceof HttpConnectionError) throw new MlflowError(connectionMessage(err, server, urlInput))
        throw err
      }
      if (res.status >= 200 && res.status < 300) return res
      const text = await res.text().catch(() => '')
      if (res.status === 401 && attempt === 1 && authorization && auth.refresh()) {
        log.debug(`${method} ${new URL(url).pathname}: 401, fetching a fresh token and retrying once`)
        continue
      }
      const failure = httpFailureMessage({
        status: res.status,
        contentType: res.headers['content-type'],
        text,
        method,
        url,
        server,
        credential: auth.describe(),
        anonymous: !authorization,
      })
      throw new MlflowError(failure.message, res.status, failure.code)
    }
  }
}
