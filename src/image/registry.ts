// The OCI distribution API: does a tag exist, what digest, what labels, and may we push (checked
// before a build by starting a blob upload); and the few writes an SBOM attach needs (a blob, a
// manifest under a tag or its digest: src/image/sbom.ts). Speaks the
// Bearer token flow (realm/service/scope from WWW-Authenticate, tokens cached per scope, renewed
// once when the registry stops taking one; identity tokens exchanged with the OAuth2
// refresh_token grant as Docker does) and registries that take Basic directly (ECR). Not found is
// an answer (a cache miss); no access (a token short of the scope named with it), no connection and
// a web page instead of a registry are errors that say which.
import { DeployError } from '../util/errors.js'
import { connectionError } from '../util/http.js'
import { TRUST_VIA_NODE, connectionFailureMessage } from '../util/net-errors.js'
import type { Logger } from '../util/logger.js'
import type { CredentialSource, RegistryCredential } from './docker-config.js'
import { sha256Hex } from './identity.js'
import { manifestReference, registryBaseUrl, type ImageRef } from './reference.js'

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const

// All four: a narrow Accept makes some registries (GHCR) answer 404 for a tag that exists.
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ')

/** The slice of an HTTP client the registry needs: src/util/http.ts's UndiciTransport. */
export interface RegistryHttp {
  request(req: {
    method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE'
    url: string
    headers?: Record<string, string>
    body?: string
    /** A token POST only reads: safe to repeat. */
    idempotent?: boolean
    signal?: AbortSignal
  }): Promise<{
    status: number
    headers: Readonly<Record<string, string | undefined>>
    text(): Promise<string>
    discard(): Promise<void>
  }>
}

export interface Challenge {
  readonly scheme: string
  readonly params: Readonly<Record<string, string>>
}

/**
 * Parses WWW-Authenticate (RFC 7235): `Bearer realm="…",service="…",scope="…"`. A header may hold
 * several challenges; all are returned in order.
 */
export function parseWwwAuthenticate(header: string | undefined): Challenge[] {
  const out: { scheme: string; params: Record<string, string> }[] = []
  // Each item is a bare token (a scheme) or key=value, the value a token or a quoted string.
  const item = /[\s,]*([^\s=,]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?/y
  let m: RegExpExecArray | null
  while (header && (m = item.exec(header)) !== null) {
    const [, name, quoted, plain] = m
    if (quoted === undefined && plain === undefined) out.push({ scheme: name!, params: {} })
    else if (out.length) out[out.length - 1]!.params[name!.toLowerCase()] = quoted?.replace(/\\(.)/g, '$1') ?? plain!
  }
  return out
}

export interface RemoteImage {
  /** Digest of what the tag points at (an index for multi-platform images): deploy by this. */
  readonly digest: string
  readonly mediaType: string
  /** Config labels merged over index/manifest annotations. */
  readonly labels: Readonly<Record<string, string>>
  /** The platform manifest read for the labels, when the tag points at an index. */
  readonly platformDigest?: string
  /** `os/arch[/variant]` of each image: an index's entries, or the single image's config. */
  readonly platforms: readonly string[]
}

interface Manifest {
  mediaType?: string
  schemaVersion?: number
  config?: { digest?: string; mediaType?: string }
  layers?: { digest?: string; mediaType?: string }[]
  manifests?: {
    digest: string
    mediaType?: string
    platform?: { os?: string; architecture?: string; variant?: string }
    annotations?: Record<string, string>
  }[]
  annotations?: Record<string, string>
}

export interface RegistryClientOptions {
  readonly http: RegistryHttp
  readonly credentials: CredentialSource
  readonly log: Logger
  readonly signal?: AbortSignal
  /** Milliseconds since the epoch, for token lifetimes (tests move it past an expiry). */
  readonly now?: () => number
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE'

/** A request body and its media type. */
interface Body {
  readonly content: string
  readonly type: string
}

/** `fresh`: a token fetched for this request, not taken from the cache. */
type Authorization = { header: string; fresh?: boolean } | undefined

/** The client_id Docker sends to token servers (moby registry.AuthClientID). */
const DOCKER_CLIENT_ID = 'docker'

export class RegistryClient {
  private readonly tokens = new Map<string, { value: string; expiresAt: number }>()
  /** The last challenge seen per registry host, so later requests authenticate up front. */
  private readonly challenges = new Map<string, Challenge>()

  constructor(private readonly options: RegistryClientOptions) {}

  private now(): number {
    return (this.options.now ?? Date.now)()
  }

  /** The digest the tag (or digest) points at, or undefined when it does not exist. */
  async headDigest(ref: ImageRef): Promise<string | undefined> {
    const path = `/v2/${ref.repository}/manifests/${manifestReference(ref)}`
    const res = await this.send(ref, 'HEAD', path, MANIFEST_ACCEPT)
    this.rejectHtml(ref, res, 'HEAD manifest')
    if (res.status === 404) return undefined
    if (res.status !== 200) throw new DeployError(`${describe(ref)}: HEAD manifest answered HTTP ${res.status}`)
    const digest = res.headers['docker-content-digest']
    if (digest) return digest
    // Older registries (ECR) may omit the header: the digest is the sha256 of the GET body.
    return (await this.getManifest(ref, manifestReference(ref)))?.digest
  }

  /** The image behind a tag with its labels, or undefined when the tag (or repository) is absent. */
  async inspect(ref: ImageRef, platform = 'linux/amd64'): Promise<RemoteImage | undefined> {
    const top = await this.getManifest(ref, manifestReference(ref))
    if (!top) return undefined
    const { manifest, child } = await this.imageManifest(ref, top, platform)
    // For a single image, manifest is top's own: its annotations count once.
    const annotations = { ...top.manifest.annotations, ...child?.annotations, ...manifest.annotations }
    const platformDigest = child?.digest
    const configDigest = manifest.config?.digest
    if (!configDigest) throw new DeployError(`${describe(ref)}: the manifest has no config (not an image?)`)
    const config = (await this.getBlobJson(ref, configDigest)) as ImageConfig
    const labels = config.config?.Labels ?? {}
    return {
      digest: top.digest,
      mediaType: top.mediaType,
      labels: { ...annotations, ...labels },
      platformDigest,
      // An index names its images' platforms; a single image's are in the config just read.
      platforms: isIndex(top.mediaType, top.manifest) ? indexPlatforms(top.manifest) : configPlatforms(config),
    }
  }

  /**
   * `os/arch[/variant]` of each image behind the reference: an index's entries (attestations left
   * out), or a single image's config. Undefined when the reference does not exist.
   */
  async platforms(ref: ImageRef): Promise<string[] | undefined> {
    const top = await this.getManifest(ref, manifestReference(ref))
    if (!top) return undefined
    if (isIndex(top.mediaType, top.manifest)) return indexPlatforms(top.manifest)
    const configDigest = top.manifest.config?.digest
    if (!configDigest) throw new DeployError(`${describe(ref)}: the manifest has no config (not an image?)`)
    return configPlatforms((await this.getBlobJson(ref, configDigest)) as ImageConfig)
  }

  /**
   * The media types of an image's layers, base first (for an index, of its `platform` image), or
   * undefined when the reference does not exist: how the pushed layers were compressed.
   */
  async layerMediaTypes(ref: ImageRef, platform = 'linux/amd64'): Promise<string[] | undefined> {
    const top = await this.getManifest(ref, manifestReference(ref))
    if (!top) return undefined
    const { manifest } = await this.imageManifest(ref, top, platform)
    return (manifest.layers ?? []).map((l) => l.mediaType ?? '')
  }

  /** The image manifest behind `top`: itself, or for an index the entry for `platform` and its manifest. */
  private async imageManifest(
    ref: ImageRef,
    top: { mediaType: string; manifest: Manifest },
    platform: string,
  ): Promise<{ manifest: Manifest; child?: NonNullable<Manifest['manifests']>[number] }> {
    if (!isIndex(top.mediaType, top.manifest)) return { manifest: top.manifest }
    const child = pickPlatform(top.manifest, platform)
    if (!child) throw new DeployError(`${describe(ref)} is an index with no image manifest for any platform`)
    const got = await this.getManifest(ref, child.digest)
    if (!got)
      throw new DeployError(`${describe(ref)}: the index lists ${child.digest}, which the registry does not have`)
    return { manifest: got.manifest, child }
  }

  private async getManifest(ref: ImageRef, reference: string) {
    const got = await this.manifestText(ref, reference)
    if (!got) return undefined
    let manifest: Manifest
    try {
      manifest = JSON.parse(got.text) as Manifest
    } catch {
      throw new DeployError(`${describe(ref)}: the manifest is not JSON`)
    }
    return { digest: got.digest, mediaType: manifest.mediaType ?? got.mediaType, manifest }
  }

  /**
   * A manifest's exact text (re-tagging must PUT the same bytes, or the digest changes), its
   * digest and media type; undefined when the registry has none under `reference`.
   */
  async manifestText(
    ref: ImageRef,
    reference: string,
  ): Promise<{ digest: string; mediaType: string; text: string } | undefined> {
    const res = await this.send(ref, 'GET', `/v2/${ref.repository}/manifests/${reference}`, MANIFEST_ACCEPT)
    // A web server that is not a registry answers 404 too, with a page: that is no cache miss.
    this.rejectHtml(ref, res, 'GET manifest')
    if (res.status === 404) {
      await res.discard()
      return undefined
    }
    const text = await this.readOk(ref, res, 'GET manifest')
    const mediaType = (res.headers['content-type'] ?? '').split(';')[0]!.trim()
    const digest = res.headers['docker-content-digest'] ?? `sha256:${sha256Hex(text)}`
    return { digest, mediaType, text }
  }

  /** A blob's text (configs, in-toto statements), checked against its digest. */
  async blobText(ref: ImageRef, digest: string, what = 'blob'): Promise<string> {
    let res = await this.send(ref, 'GET', `/v2/${ref.repository}/blobs/${digest}`, '*/*')
    // Blobs may live behind a redirect to storage (S3, a CDN): follow it without our credentials.
    for (let hops = 0; [301, 302, 303, 307, 308].includes(res.status) && hops < 3; hops++) {
      const location = res.headers.location
      await res.discard()
      if (!location) break
      res = await this.call('GET', new URL(location, registryBaseUrl(ref.apiHost)).toString(), {}, ref)
    }
    const body = await this.readOk(ref, res, `GET ${what}`)
    if (`sha256:${sha256Hex(body)}` !== digest)
      throw new DeployError(`${describe(ref)}: ${what} ${digest} does not match its digest`)
    return body
  }

  /**
   * Uploads a blob the repository does not have yet: HEAD, else the spec's monolithic upload (POST
   * /blobs/uploads/ → 202 + Location, then one PUT of the bytes with ?digest=). Returns its
   * descriptor's digest and size.
   */
  async pushBlob(ref: ImageRef, content: string): Promise<{ digest: string; size: number }> {
    const digest = `sha256:${sha256Hex(content)}`
    const size = Buffer.byteLength(content)
    const head = await this.send(ref, 'HEAD', `/v2/${ref.repository}/blobs/${digest}`, '*/*', 'pull,push')
    await head.discard()
    if (head.status === 200) return { digest, size }
    const start = await this.send(ref, 'POST', `/v2/${ref.repository}/blobs/uploads/`, '*/*', 'pull,push')
    const location = start.headers.location
    if (start.status !== 202 || !location)
      throw new DeployError(
        `${describe(ref)}: starting a blob upload answered HTTP ${start.status}: ${registryErrorSummary(await start.text())}`,
      )
    await start.discard()
    const url = new URL(location, registryBaseUrl(ref.apiHost))
    url.searchParams.set('digest', digest)
    const put = await this.send(ref, 'PUT', url.toString(), '*/*', 'pull,push', {
      content,
      type: 'application/octet-stream',
    })
    const body = await put.text()
    if (put.status !== 201)
      throw new DeployError(
        `${describe(ref)}: uploading blob ${digest} answered HTTP ${put.status}: ${registryErrorSummary(body)}`,
      )
    return { digest, size }
  }

  /** PUTs a manifest under a tag (or its digest); returns its digest. */
  async pushManifest(ref: ImageRef, reference: string, mediaType: string, text: string): Promise<string> {
    const path = `/v2/${ref.repository}/manifests/${reference}`
    const res = await this.send(ref, 'PUT', path, '*/*', 'pull,push', { content: text, type: mediaType })
    const body = await res.text()
    if (res.status !== 201)
      throw new DeployError(
        `${describe(ref)}: PUT manifest ${reference} answered HTTP ${res.status}: ${registryErrorSummary(body)}`,
      )
    return res.headers['docker-content-digest'] ?? `sha256:${sha256Hex(text)}`
  }

  /**
   * Whether the credential may push to the repository, asked before a minutes-long build: a token
   * for `pull,push`, then a blob upload started and its cancel tried (the OCI distribution spec's
   * push flow: POST /v2/<name>/blobs/uploads/ → 202 Accepted + Location, DELETE the Location). A refusal
   * throws (one line naming the repository and the missing scope). A registry that does not offer
   * this request (404, 405, any other answer) is not refused: false, and the push itself will tell.
   */
  async checkPushAccess(ref: ImageRef): Promise<boolean> {
    const res = await this.send(ref, 'POST', `/v2/${ref.repository}/blobs/uploads/`, '*/*', 'pull,push')
    await res.discard()
    if (res.status !== 202) {
      this.options.log.debug(
        `registry ${ref.registry}: push access to ${ref.repository} not checked before the build (starting a blob upload answered HTTP ${res.status}); the push will tell`,
      )
      return false
    }
    await this.cancelUpload(ref, res.headers.location)
    this.options.log.debug(`registry ${ref.registry}: push access to ${ref.repository} checked`)
    return true
  }

  /**
   * DELETE the empty upload, once, with the token the POST used. An upload left behind expires on
   * its own (distribution purges them after a week), so no answer here is an error: distribution
   * itself asks for a `delete` scope that push credentials seldom carry.
   */
  private async cancelUpload(ref: ImageRef, location: string | undefined): Promise<void> {
    const base = registryBaseUrl(ref.apiHost)
    const url = location ? new URL(location, base) : undefined
    // Our token goes only to the registry's own origin.
    if (!url || url.origin !== new URL(base).origin) return
    const known = this.challenges.get(ref.apiHost)
    const auth = known ? await this.authorize(ref, known, false, 'pull,push') : undefined
    const res = await this.call('DELETE', url.toString(), headers('*/*', auth), ref).catch((err: Error) => err)
    if (res instanceof Error) this.options.log.debug(`registry ${ref.registry}: cancelling the upload: ${res.message}`)
    else {
      await res.discard()
      if (res.status >= 300)
        this.options.log.debug(
          `registry ${ref.registry}: cancelling the upload answered HTTP ${res.status}; the registry expires it`,
        )
    }
  }

  private async getBlobJson(ref: ImageRef, digest: string): Promise<unknown> {
    const body = await this.blobText(ref, digest, 'config blob')
    try {
      return JSON.parse(body)
    } catch {
      throw new DeployError(`${describe(ref)}: the image config ${digest} is not JSON`)
    }
  }

  /**
   * One registry request, authenticating when challenged, with a token for `actions` on the
   * repository. `path` may be a whole URL on the registry's own origin (an upload's Location).
   */
  private async send(ref: ImageRef, method: Method, path: string, accept: string, actions = 'pull', body?: Body) {
    const base = registryBaseUrl(ref.apiHost)
    const url = /^https?:/.test(path) ? path : base + path
    // Our credentials go only to the registry's own origin.
    if (new URL(url).origin !== new URL(base).origin)
      throw new DeployError(`${describe(ref)}: the registry sent the request to another host (${new URL(url).origin})`)
    const known = this.challenges.get(ref.apiHost)
    let auth: Authorization = known ? await this.authorize(ref, known, false, actions) : undefined
    let res = await this.call(method, url, headers(accept, auth, body), ref, body)
    let renewedFrom: string | undefined
    if (res.status === 401) {
      const challenges = parseWwwAuthenticate(res.headers['www-authenticate'])
      await res.discard()
      const challenge =
        challenges.find((c) => /^bearer$/i.test(c.scheme)) ?? challenges.find((c) => /^basic$/i.test(c.scheme))
      if (!challenge)
        throw new DeployError(`${describe(ref)}: HTTP 401 without a Bearer or Basic challenge from ${ref.apiHost}`)
      this.challenges.set(ref.apiHost, challenge)
      // Never the cached token again: a 401 to it means the registry no longer takes it (revoked,
      // signing key rotated, expired early). One fresh token, one retry.
      auth = await this.authorize(ref, challenge, true, actions)
      if (auth?.fresh) renewedFrom = challenge.params.realm
      res = await this.call(method, url, headers(accept, auth, body), ref, body)
    }
    if (res.status === 401 || res.status === 403) {
      const cred = await this.options.credentials.get(ref.registry)
      // A token the registry finds short of the scope: say which scope, not "authentication required".
      const short = scopeRefusal({
        registry: ref.registry,
        repository: ref.repository,
        requested: scopeFor(ref, actions),
        challenge: parseWwwAuthenticate(res.headers['www-authenticate']).find((c) => /^bearer$/i.test(c.scheme)),
        tried: triedCredential(ref, cred),
      })
      if (short) {
        await res.discard()
        throw new DeployError(short)
      }
      const detail = method === 'HEAD' ? '' : `: ${registryErrorSummary(await res.text().catch(() => ''))}`
      const fresh = renewedFrom ? ` with a freshly issued token from ${renewedFrom}` : ''
      throw new DeployError(
        `registry ${ref.registry} refused access to ${ref.repository} (HTTP ${res.status}${detail})${fresh}; ${triedCredential(ref, cred)}`,
      )
    }
    return res
  }

  private async call(method: Method, url: string, hdrs: Record<string, string>, ref: ImageRef, body?: Body) {
    try {
      return await this.options.http.request({
        method,
        url,
        headers: hdrs,
        ...(body ? { body: body.content } : {}),
        signal: this.options.signal,
      })
    } catch (err) {
      throw this.unreachable(`registry ${ref.registry}`, url, err)
    }
  }

  /** A request that got no answer, worded by util/net-errors.ts; the abort reason as it is. */
  private unreachable(server: string, url: string, err: unknown): unknown {
    if (this.options.signal?.aborted) return this.options.signal.reason
    const failure = connectionError(url, err)
    return new DeployError(
      connectionFailureMessage(failure, { what: `${server} (${new URL(url).origin})`, trust: TRUST_VIA_NODE }),
    )
  }

  /**
   * The Authorization header for a challenge: a bearer token (cached, or fetched anew after a 401
   * when `fresh`), or Basic credentials.
   */
  private async authorize(
    ref: ImageRef,
    challenge: Challenge,
    fresh: boolean,
    actions = 'pull',
  ): Promise<Authorization> {
    const cred = await this.options.credentials.get(ref.registry)
    if (/^basic$/i.test(challenge.scheme)) {
      if (!cred) {
        if (!fresh) return undefined
        throw new DeployError(
          `registry ${ref.registry} requires authentication for ${ref.repository}; ${triedCredential(ref, cred)}`,
        )
      }
      if (cred.kind === 'registry-token') return { header: `Bearer ${cred.secret}` }
      return { header: `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.secret}`).toString('base64')}` }
    }
    if (cred?.kind === 'registry-token') return { header: `Bearer ${cred.secret}` }
    const realm = challenge.params.realm
    if (!realm) throw new DeployError(`registry ${ref.registry} sent a Bearer challenge without a realm`)
    const service = challenge.params.service
    // Our own scope: the challenge's may be for another repository (a cached challenge) or absent.
    const scope = scopeFor(ref, actions)
    const key = `${realm}|${service ?? ''}|${scope}`
    const cached = this.tokens.get(key)
    if (!fresh && cached && cached.expiresAt > this.now()) return { header: `Bearer ${cached.value}` }
    this.tokens.delete(key)
    this.options.log.debug(
      `registry ${ref.registry}: token for ${scope} from ${realm} (${cred ? cred.source : 'anonymous'})`,
    )
    const token =
      cred?.kind === 'identity-token'
        ? await this.exchangeIdentityToken(ref, realm, service, scope, cred)
        : await this.fetchToken(ref, realm, service, scope, cred)
    this.tokens.set(key, token)
    return { header: `Bearer ${token.value}`, fresh: true }
  }

  /**
   * An identity token (what `docker login` keeps when the token server hands out refresh tokens,
   * and what ACR's login stores) is an OAuth2 refresh token: POST it with the refresh_token grant
   * (distribution spec auth/oauth.md), as Docker does. It is never a Basic password.
   */
  private async exchangeIdentityToken(
    ref: ImageRef,
    realm: string,
    service: string | undefined,
    scope: string,
    cred: RegistryCredential,
  ): Promise<{ value: string; expiresAt: number }> {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.secret })
    if (service) form.set('service', service)
    form.set('scope', scope)
    form.set('client_id', DOCKER_CLIENT_ID)
    const origin = new URL(realm).origin
    const res = await this.tokenCall(ref, realm, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    })
    const body = await res.text()
    if (res.status === 404)
      throw new DeployError(
        `the token service of registry ${ref.registry} (${origin}) does not take OAuth2 token requests (POST answered HTTP 404), which an identity token needs; ${triedCredential(ref, cred)}: log in with a username and password instead`,
      )
    if (res.status >= 400 && res.status < 500)
      throw new DeployError(
        `the token service of registry ${ref.registry} (${origin}) refused the identity token for ${scope} (HTTP ${res.status}: ${oauthErrorSummary(body)}); ${triedCredential(ref, cred)}: log in to the registry again (the identity token may have expired)`,
      )
    return this.tokenFromBody(ref, origin, res.status, body)
  }

  private async fetchToken(
    ref: ImageRef,
    realm: string,
    service: string | undefined,
    scope: string,
    cred: RegistryCredential | undefined,
  ): Promise<{ value: string; expiresAt: number }> {
    const url = new URL(realm)
    if (service) url.searchParams.set('service', service)
    url.searchParams.set('scope', scope)
    const hdrs: Record<string, string> = { accept: 'application/json' }
    if (cred?.kind === 'basic')
      hdrs.authorization = `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.secret}`).toString('base64')}`
    const res = await this.tokenCall(ref, url.toString(), { method: 'GET', headers: hdrs })
    const body = await res.text()
    if (res.status === 401 || res.status === 403)
      throw new DeployError(
        `the token service of registry ${ref.registry} (${url.origin}) refused ${scope} (HTTP ${res.status}); ${triedCredential(ref, cred)}`,
      )
    return this.tokenFromBody(ref, url.origin, res.status, body)
  }

  private async tokenCall(
    ref: ImageRef,
    url: string,
    req: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
  ) {
    try {
      return await this.options.http.request({ ...req, url, idempotent: true, signal: this.options.signal })
    } catch (err) {
      throw this.unreachable(`the token service of registry ${ref.registry}`, url, err)
    }
  }

  /** `token` or `access_token` from a token service's answer, with its lifetime. */
  private tokenFromBody(
    ref: ImageRef,
    origin: string,
    status: number,
    body: string,
  ): { value: string; expiresAt: number } {
    if (status !== 200)
      throw new DeployError(
        `the token service of registry ${ref.registry} (${origin}) answered HTTP ${status}: ${snippet(body)}`,
      )
    let json: { token?: string; access_token?: string; expires_in?: number }
    try {
      json = JSON.parse(body) as typeof json
    } catch {
      throw new DeployError(
        `the token service of registry ${ref.registry} (${origin}) did not answer JSON: ${snippet(body)}`,
      )
    }
    const value = json.token ?? json.access_token
    if (!value) throw new DeployError(`the token service of registry ${ref.registry} answered without a token`)
    // Renew a little early; the spec's default lifetime is 60 s.
    const expiresAt = this.now() + Math.max(10, (json.expires_in ?? 60) - 10) * 1000
    return { value, expiresAt }
  }

  private async readOk(
    ref: ImageRef,
    res: Awaited<ReturnType<RegistryHttp['request']>>,
    what: string,
  ): Promise<string> {
    this.rejectHtml(ref, res, what)
    const body = await res.text()
    if (res.status !== 200)
      throw new DeployError(`${describe(ref)}: ${what} answered HTTP ${res.status}: ${registryErrorSummary(body)}`)
    return body
  }

  private rejectHtml(ref: ImageRef, res: Awaited<ReturnType<RegistryHttp['request']>>, what: string): void {
    if (/text\/html/i.test(res.headers['content-type'] ?? '')) {
      void res.discard()
      throw new DeployError(
        `${ref.apiHost} answered ${what} for ${ref.repository} with an HTML page (HTTP ${res.status}), not the registry API: is ${ref.registry} a container registry, or is a proxy or login page in the way?`,
      )
    }
  }
}

function scopeFor(ref: ImageRef, actions: string): string {
  return `repository:${ref.repository}:${actions}`
}

/**
 * The one-line refusal when a registry took the token but found it short of the scope: a Bearer
 * challenge with error="insufficient_scope" (RFC 6750 §3.1), the scope it needs in `scope`
 * (distribution sends it; else the one we asked for). Token services grant
 * what they may and leave the rest out without an error, so the registry is the one to say it.
 * Undefined for any other refusal.
 */
export function scopeRefusal(o: {
  registry: string
  repository: string
  /** The scope the token was asked for, e.g. repository:wine:pull,push. */
  requested: string
  challenge: Challenge | undefined
  /** Which credential was tried (never the secret). */
  tried: string
}): string | undefined {
  const c = o.challenge
  if (!c || !/^bearer$/i.test(c.scheme) || c.params.error !== 'insufficient_scope') return undefined
  // `scope` may list several, space-separated (RFC 6750 §3): the one for this repository.
  const scopes = (c.params.scope ?? '').split(' ').filter(Boolean)
  const scope = scopes.find((s) => s.startsWith(`repository:${o.repository}:`)) ?? scopes[0] ?? o.requested
  const actions = scope.slice(scope.lastIndexOf(':') + 1).replace(/,/g, ' and ')
  return `registry ${o.registry} refused ${scope} (insufficient_scope): the token does not grant ${actions} on ${o.repository}; ${o.tried}: use a credential with ${actions} access to ${o.repository}`
}

function headers(accept: string, auth: Authorization, body?: Body): Record<string, string> {
  return {
    accept,
    ...(auth ? { authorization: auth.header } : {}),
    ...(body ? { 'content-type': body.type } : {}),
  }
}

function describe(ref: ImageRef): string {
  return `${ref.registry}/${ref.repository}:${manifestReference(ref)}`
}

function isIndex(mediaType: string, m: Manifest): boolean {
  return mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList || (!m.config && Array.isArray(m.manifests))
}

/** The image config's platform fields (OCI image spec, config.json) and its settings. */
interface ImageConfig {
  os?: string
  architecture?: string
  variant?: string
  config?: { Labels?: Record<string, string> | null }
}

function formatPlatform(p: { os?: string; architecture?: string; variant?: string }): string {
  return [p.os ?? 'unknown', p.architecture ?? 'unknown', ...(p.variant ? [p.variant] : [])].join('/')
}

const indexPlatforms = (index: Manifest): string[] => imageEntries(index).map((m) => formatPlatform(m.platform ?? {}))
const configPlatforms = (config: ImageConfig): string[] => (config.architecture ? [formatPlatform(config)] : [])

/** An index's image entries: attestation manifests (unknown/unknown) never count. */
function imageEntries(index: Manifest): NonNullable<Manifest['manifests']> {
  return (index.manifests ?? []).filter(
    (m) =>
      m.platform?.os !== 'unknown' &&
      m.platform?.architecture !== 'unknown' &&
      m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
  )
}

/** The platform's manifest from an index; attestation manifests (unknown/unknown) never count. */
export function pickPlatform(
  index: Manifest,
  platform: string,
): NonNullable<Manifest['manifests']>[number] | undefined {
  const [os, arch, variant] = platform.split('/')
  const images = imageEntries(index)
  return (
    images.find(
      (m) =>
        m.platform?.os === os && m.platform?.architecture === arch && (!variant || m.platform?.variant === variant),
    ) ?? images[0]
  )
}

/** `error (description)` from an OAuth2 error body (RFC 6749 §5.2), or the body's start. */
export function oauthErrorSummary(body: string): string {
  try {
    const json = JSON.parse(body) as { error?: unknown; error_description?: unknown }
    if (typeof json.error === 'string')
      return typeof json.error_description === 'string' ? `${json.error} (${json.error_description})` : json.error
  } catch {
    // not JSON: fall through
  }
  return snippet(body) || '(empty body)'
}

/** `CODE: message` from the spec's error body, or the body's start. */
export function registryErrorSummary(body: string): string {
  try {
    const json = JSON.parse(body) as { errors?: { code?: string; message?: string }[] }
    const e = json.errors?.[0]
    if (e) return [e.code, e.message].filter(Boolean).join(': ')
  } catch {
    // not JSON: fall through
  }
  return snippet(body) || '(empty body)'
}

function snippet(body: string): string {
  return body.replace(/\s+/g, ' ').trim().slice(0, 200)
}

function triedCredential(ref: ImageRef, cred: RegistryCredential | undefined): string {
  if (!cred)
    return `no credentials for ${ref.registry} were found in the Docker config (log in first, e.g. with docker/login-action)`
  const user = cred.username ? ` of user "${cred.username}"` : ''
  const who =
    cred.kind === 'identity-token'
      ? `an identity token${user}`
      : cred.kind === 'registry-token'
        ? 'a registry token'
        : cred.username
          ? `user "${cred.username}"`
          : 'a password without a user name'
  return `tried ${who} from ${cred.source}`
}
