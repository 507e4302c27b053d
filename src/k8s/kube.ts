// The cluster: read, server-side apply, delete and watch Knative Services and KServe
// InferenceServices, and read the events around them. Every apiserver failure becomes one line
// that says what to fix (namespace missing, RBAC, CRD not installed, unreachable, TLS).
//
// Requests go through a small transport over client-node's KubeConfig (auth, TLS, exec plugins)
// rather than KubernetesObjectApi: that API can neither send `fieldValidation` nor take an
// AbortSignal, and its own discovery turns a missing CRD into an opaque message.
import { HttpMethod, KubeConfig, RequestContext, Watch } from '@kubernetes/client-node'
import { request, type Dispatcher } from 'undici'
import { DeployError } from '../util/errors.js'
import { classifyConnectionFailure, errorCode } from '../util/net-errors.js'
import type { Logger } from '../util/logger.js'
import { isPlainObject } from '../util/yaml.js'
import { MANAGED_BY } from './render.js'
import type { KubeObject } from './readiness.js'

export const FIELD_MANAGER = 'mlflow-k8s-deploy'
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'

export interface ServingKind {
  readonly group: string
  readonly version: string
  readonly kind: string
  readonly plural: string
  /** The product, for "X is not installed" messages. */
  readonly product: string
}

export const KNATIVE_SERVICE: ServingKind = {
  group: 'serving.knative.dev',
  version: 'v1',
  kind: 'Service',
  plural: 'services',
  product: 'Knative Serving',
}
export const INFERENCE_SERVICE: ServingKind = {
  group: 'serving.kserve.io',
  version: 'v1beta1',
  kind: 'InferenceService',
  plural: 'inferenceservices',
  product: 'KServe',
}

/** Built-in kinds the action reads (around a KServe Standard-mode predictor, and what pods need); never writes. */
const builtIn = (group: string, kind: string, plural: string): ServingKind => ({
  group,
  version: 'v1',
  kind,
  plural,
  product: 'Kubernetes',
})
export const DEPLOYMENT = builtIn('apps', 'Deployment', 'deployments')
export const REPLICA_SET = builtIn('apps', 'ReplicaSet', 'replicasets')
export const POD = builtIn('', 'Pod', 'pods')
export const SERVICE = builtIn('', 'Service', 'services')
export const CONFIG_MAP = builtIn('', 'ConfigMap', 'configmaps')
export const SECRET = builtIn('', 'Secret', 'secrets')
export const SERVICE_ACCOUNT = builtIn('', 'ServiceAccount', 'serviceaccounts')

export function apiVersionOf(kind: ServingKind): string {
  return kind.group ? `${kind.group}/${kind.version}` : kind.version
}

export function servingKindOf(obj: { apiVersion?: unknown; kind?: unknown }): ServingKind {
  for (const k of [KNATIVE_SERVICE, INFERENCE_SERVICE]) {
    if (obj.apiVersion === apiVersionOf(k) && obj.kind === k.kind) return k
  }
  throw new DeployError(
    `cannot deploy a ${String(obj.apiVersion)} ${String(obj.kind)}: not a Knative Service or InferenceService`,
  )
}

// --- transport -----------------------------------------------------------------------------------

export interface KubeRequest {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  readonly path: string
  readonly query?: Readonly<Record<string, string | undefined>>
  readonly body?: string
  readonly contentType?: string
  readonly signal?: AbortSignal
}

export interface KubeResponse {
  readonly status: number
  /** Parsed JSON, or the raw text when the body is not JSON. */
  readonly body: unknown
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'

export interface KubeTransport {
  /** The API server URL, for messages. */
  readonly server: string
  /** The kubeconfig user name, for messages when the server names nobody. */
  readonly user: string
  /** Answers every HTTP status; throws KubeUnreachableError when no answer came. */
  request(req: KubeRequest): Promise<KubeResponse>
  /**
   * Streams watch events until the server ends the stream (resolves) or the connection fails
   * (rejects; an HTTP error status carries `statusCode`). Aborting the signal ends it.
   */
  watch(
    path: string,
    query: Readonly<Record<string, string | undefined>>,
    onEvent: (type: WatchEventType, object: unknown) => void,
    signal: AbortSignal,
  ): Promise<void>
}

/** No answer from the API server: refused, DNS, TLS. */
export class KubeUnreachableError extends DeployError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** An error answer from the API server, already worded for the user. */
export class KubeApiError extends DeployError {
  constructor(
    readonly status: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message)
  }
}

/** Words a connection failure; never includes credentials (only the server URL and a code). */
export function unreachable(server: string, err: unknown): KubeUnreachableError {
  const e = err as { message?: string; cause?: { message?: string } }
  const code = errorCode(err) ?? 'UNKNOWN'
  const detail = e?.cause?.message ?? e?.message ?? String(err)
  const kind = classifyConnectionFailure(code, detail, server.startsWith('https:'))
  if (kind === 'certificate' || kind === 'not-tls') {
    return new KubeUnreachableError(
      code,
      `TLS with the Kubernetes API server ${server} failed (${code}): check the cluster's certificate-authority in the kubeconfig`,
    )
  }
  return new KubeUnreachableError(code, `the Kubernetes API server ${server} is unreachable (${code}: ${detail})`)
}

/** The transport over client-node's KubeConfig: its auth (tokens, certs, exec plugins) and TLS. */
export class KubeConfigTransport implements KubeTransport {
  readonly server: string
  readonly user: string
  private dispatcher: Dispatcher | undefined

  constructor(private readonly config: KubeConfig) {
    const cluster = config.getCurrentCluster()
    if (!cluster) throw new DeployError('the kubeconfig has no cluster for its current context')
    this.server = cluster.server.replace(/\/+$/, '')
    this.user = config.getCurrentUser()?.name ?? 'unknown'
  }

  async request(req: KubeRequest): Promise<KubeResponse> {
    const url = this.url(req.path, req.query)
    const ctx = new RequestContext(url, HttpMethod[req.method])
    let res: Dispatcher.ResponseData
    try {
      await this.config.applySecurityAuthentication(ctx)
      // KubeConfig makes a new agent per call; keeping the first one reuses its connections.
      this.dispatcher ??= ctx.getDispatcher()
      res = await request(url, {
        method: req.method,
        headers: {
          ...ctx.getHeaders(),
          accept: 'application/json',
          ...(req.contentType ? { 'content-type': req.contentType } : {}),
        },
        body: req.body,
        signal: req.signal,
        dispatcher: this.dispatcher,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      })
    } catch (err) {
      req.signal?.throwIfAborted()
      throw unreachable(this.server, err)
    }
    const text = await res.body.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON: keep the text (e.g. "404 page not found")
    }
    return { status: res.statusCode, body }
  }

  watch(
    path: string,
    query: Readonly<Record<string, string | undefined>>,
    onEvent: (type: WatchEventType, object: unknown) => void,
    signal: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      let controller: AbortController | undefined
      const abort = () => controller?.abort()
      signal.addEventListener('abort', abort, { once: true })
      const finish = (err: unknown) => {
        signal.removeEventListener('abort', abort)
        if (signal.aborted) reject(signal.reason)
        // client-node ends a watch that stays quiet for 30 s: an ordinary close, re-watch.
        else if (!err || (err as Error).name === 'TimeoutError') resolve()
        else if (typeof (err as { statusCode?: number }).statusCode === 'number') reject(err)
        else reject(unreachable(this.server, err))
      }
      new Watch(this.config)
        .watch(path, query, (type, obj) => onEvent(type as WatchEventType, obj), finish)
        .then((c) => {
          controller = c
          if (signal.aborted) c.abort()
        }, finish)
    })
  }

  private url(path: string, query: Readonly<Record<string, string | undefined>> = {}): string {
    const url = new URL(this.server + path)
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v)
    return url.toString()
  }
}

// --- the Kube client -----------------------------------------------------------------------------

interface Target {
  readonly kind: ServingKind
  readonly namespace: string
  readonly name: string
}

export interface ApplyOptions {
  /** Take over an object that exists but was not created by this action. */
  readonly takeOver?: boolean
  /** The object as the caller has just read it (undefined inside: absent), sparing a second GET. */
  readonly current?: { readonly object: KubeObject | undefined }
  readonly dryRun?: boolean
  /**
   * Take over fields another manager set (default true: the action owns what it sets). A rollback
   * passes false: it restores only what the action itself applied.
   */
  readonly force?: boolean
  readonly signal?: AbortSignal
}

export interface ApplyResult {
  readonly object: KubeObject
  /** The object as it was before the apply; undefined when the apply created it. */
  readonly previous: KubeObject | undefined
}

export interface ListResult<T = KubeObject> {
  readonly object: T | undefined
  readonly resourceVersion: string
}

export class Kube {
  private readonly installed = new Map<string, Promise<void>>()

  constructor(
    private readonly transport: KubeTransport,
    private readonly log: Logger,
  ) {}

  /** Fails with "<product> is not installed" unless the API server serves the kind. */
  ensureInstalled(kind: ServingKind, signal?: AbortSignal): Promise<void> {
    const key = apiVersionOf(kind)
    let check = this.installed.get(key)
    if (!check) {
      check = this.discover(kind, signal)
      this.installed.set(key, check)
      check.catch(() => this.installed.delete(key))
    }
    return check
  }

  private async discover(kind: ServingKind, signal?: AbortSignal): Promise<void> {
    const res = await this.transport.request({ method: 'GET', path: `/apis/${apiVersionOf(kind)}`, signal })
    const notInstalled = new KubeApiError(
      404,
      'NotFound',
      `${kind.product} is not installed in the cluster (no ${apiVersionOf(kind)} ${kind.kind})`,
    )
    if (res.status === 404) throw notInstalled
    if (res.status !== 200) throw this.apiError(res, 'get', { kind, namespace: '', name: '' }, 'discovery')
    const resources = isPlainObject(res.body) && Array.isArray(res.body['resources']) ? res.body['resources'] : []
    if (!resources.some((r) => isPlainObject(r) && r['name'] === kind.plural && r['kind'] === kind.kind)) {
      throw notInstalled
    }
  }

  async get(kind: ServingKind, namespace: string, name: string, signal?: AbortSignal): Promise<KubeObject | undefined> {
    await this.ensureInstalled(kind, signal)
    return this.read(kind, namespace, name, signal)
  }

  /**
   * Server-side apply as the action's field manager, forcing conflicts unless told not to (the
   * action owns what it sets), with strict field validation so a misspelt template field fails instead of vanishing.
   * Refuses to take over an object not managed by the action unless asked.
   */
  async apply(manifest: KubeObject, options: ApplyOptions = {}): Promise<ApplyResult> {
    const kind = servingKindOf(manifest)
    const target = targetOf(manifest, kind)
    const previous = options.current
      ? options.current.object
      : await this.get(kind, target.namespace, target.name, options.signal)
    if (previous && !options.takeOver) this.checkManaged(previous, target, 'update')
    const res = await this.transport.request({
      method: 'PATCH',
      path: objectPath(target),
      query: {
        fieldManager: FIELD_MANAGER,
        force: options.force === false ? undefined : 'true',
        fieldValidation: 'Strict',
        dryRun: options.dryRun ? 'All' : undefined,
      },
      contentType: 'application/apply-patch+yaml',
      body: JSON.stringify(manifest),
      signal: options.signal,
    })
    if (res.status !== 200 && res.status !== 201) throw this.apiError(res, 'patch', target)
    const object = res.body as KubeObject
    this.log.debug(
      `applied ${describe(target)}: generation ${object.metadata?.generation}, resourceVersion ${object.metadata?.resourceVersion}`,
    )
    return { object, previous }
  }

  /** Deletes the object if it exists and the action manages it; returns the deleted uid. Idempotent. */
  async delete(
    kind: ServingKind,
    namespace: string,
    name: string,
    options: { takeOver?: boolean; signal?: AbortSignal; uid?: string } = {},
  ): Promise<{ readonly deleted: string } | 'absent'> {
    const target = { kind, namespace, name }
    const existing = await this.get(kind, namespace, name, options.signal)
    // With a uid: only that object; a same-named successor counts as "the one asked for is gone".
    if (!existing || (options.uid && existing.metadata?.uid !== options.uid)) return 'absent'
    if (!options.takeOver) this.checkManaged(existing, target, 'delete')
    const res = await this.transport.request({
      method: 'DELETE',
      path: objectPath(target),
      // Only the object we looked at: a same-named object created since then is left alone.
      body: JSON.stringify({ preconditions: { uid: existing.metadata?.uid }, propagationPolicy: 'Background' }),
      contentType: 'application/json',
      signal: options.signal,
    })
    if (res.status === 404) return 'absent'
    if (res.status !== 200 && res.status !== 202) throw this.apiError(res, 'delete', target)
    // The uid of what was deleted: waiting for "gone" must not mistake a successor for it.
    return { deleted: existing.metadata?.uid ?? '' }
  }

  /** Reads the object and the resourceVersion to watch from (a list, so it works when absent). */
  async list(kind: ServingKind, namespace: string, name: string, signal?: AbortSignal): Promise<ListResult> {
    await this.ensureInstalled(kind, signal)
    const target = { kind, namespace, name }
    const res = await this.transport.request({
      method: 'GET',
      path: collectionPath(target),
      query: { fieldSelector: `metadata.name=${name}` },
      signal,
    })
    if (res.status !== 200) throw this.apiError(res, 'list', target)
    const body = res.body as { items?: KubeObject[]; metadata?: { resourceVersion?: string } }
    // List items carry no apiVersion/kind; readiness needs the kind.
    const item = body.items?.[0]
    const object = item && { ...item, apiVersion: apiVersionOf(kind), kind: kind.kind }
    return { object, resourceVersion: body.metadata?.resourceVersion ?? '' }
  }

  /** The objects of a kind in a namespace matching a label selector (one page of at most `limit`). */
  async listLabelled(
    kind: ServingKind,
    namespace: string,
    labelSelector: string,
    signal?: AbortSignal,
    limit = 500,
  ): Promise<KubeObject[]> {
    await this.ensureInstalled(kind, signal)
    const items = await this.readAll(kind, namespace, labelSelector, signal, limit)
    return items.map((item) => ({ ...item, apiVersion: apiVersionOf(kind), kind: kind.kind }))
  }

  /** An object (also built-in ones: Deployment, Service, ConfigMap…); undefined when absent. */
  async read(
    kind: ServingKind,
    namespace: string,
    name: string,
    signal?: AbortSignal,
  ): Promise<KubeObject | undefined> {
    const target = { kind, namespace, name }
    const res = await this.transport.request({ method: 'GET', path: objectPath(target), signal })
    if (res.status === 404) return undefined
    if (res.status !== 200) throw this.apiError(res, 'get', target)
    return res.body as KubeObject
  }

  /** Objects matching a label selector (also built-in ones: ReplicaSets, pods), at most `limit`. */
  async readAll(
    kind: ServingKind,
    namespace: string,
    labelSelector: string,
    signal?: AbortSignal,
    limit = 500,
  ): Promise<KubeObject[]> {
    const target = { kind, namespace, name: '' }
    const res = await this.transport.request({
      method: 'GET',
      path: collectionPath(target),
      query: { labelSelector, limit: String(limit) },
      signal,
    })
    if (res.status !== 200) throw this.apiError(res, 'list', target)
    return (res.body as { items?: KubeObject[] }).items ?? []
  }

  /** Watches the one object from `resourceVersion`; see KubeTransport.watch. */
  async watch(
    kind: ServingKind,
    namespace: string,
    name: string,
    resourceVersion: string,
    onEvent: (type: WatchEventType, object: unknown) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const target = { kind, namespace, name }
    try {
      await this.transport.watch(
        collectionPath(target),
        { fieldSelector: `metadata.name=${name}`, resourceVersion, allowWatchBookmarks: 'true' },
        onEvent,
        signal,
      )
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode
      // 410 Gone is the caller's to handle (relist); other statuses are worded here.
      if (typeof status === 'number' && status !== 410) {
        throw this.apiError({ status, body: (err as Error).message }, 'watch', target)
      }
      throw err
    }
  }

  /**
   * Recent events about the object and its children (Knative revisions <name>-00001 and their pods,
   * KServe's <name>-predictor…), newest first. Selected by name pattern, so events of a sibling
   * such as <name>-pr-1 are never shown for <name>.
   */
  async events(
    kind: ServingKind,
    namespace: string,
    name: string,
    signal?: AbortSignal,
    limit = 10,
  ): Promise<string[]> {
    const res = await this.transport.request({
      method: 'GET',
      path: `/api/v1/namespaces/${namespace}/events`,
      signal,
    })
    if (res.status !== 200) throw this.apiError(res, 'list', { kind, namespace, name }, 'events')
    const items = (res.body as { items?: Record<string, unknown>[] }).items ?? []
    return selectEvents(items, name, limit)
  }

  /**
   * Which of `verbs` the kubeconfig's identity may not use on a resource in the namespace, asked of
   * the apiserver with SelfSubjectAccessReviews (any authenticated identity may create them).
   */
  async deniedVerbs(
    resource: { readonly group: string; readonly plural: string },
    namespace: string,
    verbs: readonly string[],
    signal?: AbortSignal,
  ): Promise<string[]> {
    const answers = await Promise.all(
      verbs.map(async (verb) => {
        const res = await this.transport.request({
          method: 'POST',
          path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
          contentType: 'application/json',
          body: JSON.stringify({
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { namespace, verb, group: resource.group, resource: resource.plural } },
          }),
          signal,
        })
        if (res.status !== 201 && res.status !== 200) {
          throw this.apiError(
            res,
            'create',
            { kind: KNATIVE_SERVICE, namespace, name: '' },
            'selfsubjectaccessreviews.authorization.k8s.io',
          )
        }
        return (res.body as { status?: { allowed?: boolean } }).status?.allowed === true ? undefined : verb
      }),
    )
    return answers.filter((v): v is string => v !== undefined)
  }

  private checkManaged(obj: KubeObject, target: Target, verb: string): void {
    const owner = obj.metadata?.labels?.[MANAGED_BY_LABEL]
    if (owner === MANAGED_BY) return
    throw new DeployError(
      `${describe(target)} exists but is not managed by mlflow-k8s-deploy (label ${MANAGED_BY_LABEL}=${owner ?? '<unset>'}); ` +
        `refusing to ${verb} it: choose another name, or allow taking it over`,
    )
  }

  /** One line for an error answer: what was refused, why, and what to do. */
  apiError(res: KubeResponse, verb: string, target: Target, what?: string): KubeApiError {
    return kubeApiError(res, verb, target, this.transport, what)
  }
}

/** Names of the object and the children its controller makes; a sibling "<name>-pr-1" is none. */
export function aboutObject(name: string, involved: string | undefined): boolean {
  if (!involved) return false
  if (involved === name) return true
  if (!involved.startsWith(`${name}-`)) return false
  const rest = involved.slice(name.length + 1)
  // Knative: <name>-00001 and its pods <name>-00001-deployment-…; KServe: <name>-predictor…
  return /^\d{5}(-|$)/.test(rest) || /^(predictor|transformer|explainer)(-|$)/.test(rest)
}

/** Events about the object, newest first, as one line each (pure; exported for tests). */
export function selectEvents(items: readonly Record<string, unknown>[], name: string, limit: number): string[] {
  const time = (e: Record<string, unknown>) =>
    String(
      e['lastTimestamp'] ??
        e['eventTime'] ??
        (e['metadata'] as { creationTimestamp?: string } | undefined)?.creationTimestamp ??
        '',
    )
  return items
    .filter((e) => aboutObject(name, ((e['involvedObject'] ?? {}) as { name?: string }).name))
    .sort((a, b) => time(b).localeCompare(time(a)))
    .slice(0, limit)
    .map((e) => {
      const involved = (e['involvedObject'] ?? {}) as { kind?: string; name?: string }
      const count = Number(e['count'] ?? 1) > 1 ? ` (x${e['count']})` : ''
      return `${time(e)} ${e['type']} ${e['reason']} ${involved.kind}/${involved.name}: ${e['message']}${count}`
    })
}

/** Words an apiserver error answer (pure; exported for tests). */
export function kubeApiError(
  res: KubeResponse,
  verb: string,
  target: Target,
  who: { server: string; user: string },
  what?: string,
): KubeApiError {
  const status = isPlainObject(res.body) ? res.body : {}
  const message = typeof status['message'] === 'string' ? status['message'] : String(res.body).slice(0, 300).trim()
  const reason = typeof status['reason'] === 'string' ? status['reason'] : undefined
  const details = isPlainObject(status['details']) ? status['details'] : {}
  const resource = what ?? (target.kind.group ? `${target.kind.plural}.${target.kind.group}` : target.kind.plural)
  const where = target.namespace ? ` in namespace "${target.namespace}"` : ''
  switch (res.status) {
    case 401:
      return new KubeApiError(
        401,
        reason,
        `the Kubernetes API server ${who.server} rejected the credentials of user "${who.user}" (401 Unauthorized): the token or certificate in the kubeconfig is invalid or expired`,
      )
    case 403: {
      const user = /User "([^"]+)"/.exec(message)?.[1] ?? who.user
      return new KubeApiError(
        403,
        reason,
        `RBAC forbids "${user}" to ${verb} ${resource}${where}: grant it with a Role and RoleBinding (the server said: ${message})`,
      )
    }
    case 404:
      if (details['kind'] === 'namespaces') {
        return new KubeApiError(
          404,
          reason,
          `namespace "${String(details['name'] ?? target.namespace)}" does not exist: create it first (the action does not create namespaces)`,
        )
      }
      return new KubeApiError(404, reason, `${describe(target)}: not found (${message})`)
    default: {
      // Server-side apply types the patch against the CRD schema before strict validation runs,
      // so an unknown field comes back as a 500 "failed to create typed patch object".
      const schema = /failed to create typed patch object \([^)]*\): (.*)$/.exec(message)
      if (schema) {
        return new KubeApiError(
          res.status,
          reason,
          `${describe(target)}: the manifest does not fit the cluster's ${target.kind.kind} schema: ${schema[1]}`,
        )
      }
      return new KubeApiError(
        res.status,
        reason,
        `the API server refused to ${verb} ${describe(target)}: ${res.status}${reason ? ` ${reason}` : ''}: ${message}`,
      )
    }
  }
}

function targetOf(manifest: KubeObject, kind: ServingKind): Target {
  const name = manifest.metadata?.name
  const namespace = manifest.metadata?.namespace
  if (!name || !namespace) throw new DeployError('the manifest needs metadata.name and metadata.namespace')
  return { kind, namespace, name }
}

function collectionPath(t: Target): string {
  const root = t.kind.group ? '/apis' : '/api'
  return `${root}/${apiVersionOf(t.kind)}/namespaces/${encodeURIComponent(t.namespace)}/${t.kind.plural}`
}

function objectPath(t: Target): string {
  return `${collectionPath(t)}/${encodeURIComponent(t.name)}`
}

export function describe(t: Target): string {
  return t.name ? `${t.kind.kind} ${t.namespace}/${t.name}` : `${t.kind.kind}s in ${t.namespace}`
}
