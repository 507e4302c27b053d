// Credentials for MLflow behind one interface: static (bearer, basic) and token providers
// (OAuth2 client credentials with OIDC discovery; the job's GitHub OIDC token used as is,
// exchanged per RFC 8693, or as an RFC 7523 client assertion). Every token obtained is masked
// at once; messages name the credential (describe()), never its value.
import type { MlflowInputs, OidcInputs } from '../inputs.js'
import { errorMessage } from '../util/errors.js'
import { HttpConnectionError, type HttpTransport } from '../util/http.js'
import { MlflowError, bodyKind, connectionMessage, firstLine, parseErrorJson } from './errors.js'

export interface AuthProvider {
  /** Which credential this is, for messages ("bearer token from mlflow-token"); never the value. */
  describe(): string
  /** The Authorization header value, or undefined to send none. */
  authorization(signal?: AbortSignal): Promise<string | undefined>
  /** After a 401: drop a cached token. True when asking again may help. */
  refresh(): boolean
}

export interface AuthDeps {
  readonly http: HttpTransport
  /** `core.getIDToken` in the action; an audience-aware fetch in tests and the CLI. */
  readonly getIdToken: (audience: string | undefined) => Promise<string>
  readonly mask: (secret: string) => void
  /** For the ACTIONS_ID_TOKEN_REQUEST_* check. */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly now?: () => number
}

export const NO_AUTH: AuthProvider = {
  describe: () => 'no credentials',
  authorization: async () => undefined,
  refresh: () => false,
}

export function bearerAuth(token: string, source: string): AuthProvider {
  return {
    describe: () => `bearer token from ${source}`,
    authorization: async () => `Bearer ${token}`,
    refresh: () => false,
  }
}

export function basicAuth(username: string, password: string, mask: (s: string) => void): AuthProvider {
  const header = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
  mask(header.slice('Basic '.length))
  return {
    describe: () => `basic auth as user "${username}" (mlflow-username/mlflow-password)`,
    authorization: async () => header,
    refresh: () => false,
  }
}

// --- tokens and their lifetime --------------------------------------------------------------------

export interface Token {
  readonly value: string
  readonly obtainedAt: number
  readonly expiresAt: number
}

/** Tokens whose lifetime nobody states are used for 5 minutes, then fetched again. */
const UNKNOWN_LIFETIME_MS = 5 * 60_000

/** When a token expires: `expires_in` if given, else a JWT's `exp`, else a short default. */
export function tokenExpiry(value: string, obtainedAt: number, expiresIn: unknown): number {
  const seconds = typeof expiresIn === 'string' ? Number(expiresIn) : expiresIn
  if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0) return obtainedAt + seconds * 1000
  const exp = jwtClaims(value)?.exp
  if (typeof exp === 'number') return exp * 1000
  return obtainedAt + UNKNOWN_LIFETIME_MS
}

/** Refresh a minute before expiry, or halfway through a lifetime shorter than two minutes. */
export function needsRefresh(token: Token, now: number): boolean {
  const lifetime = token.expiresAt - token.obtainedAt
  const margin = Math.min(60_000, lifetime / 2)
  return now >= token.expiresAt - margin
}

export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const payload = token.split('.')[1]
  if (!payload) return undefined
  try {
    const value = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null ? value : undefined
  } catch {
    return undefined
  }
}

/** A provider that fetches tokens on demand and caches them until shortly before expiry. */
export class TokenAuth implements AuthProvider {
  private token: Token | undefined
  private pending: Promise<Token> | undefined

  constructor(
    private readonly description: string,
    private readonly fetchToken: (signal?: AbortSignal) => Promise<Token>,
    private readonly now: () => number,
  ) {}

  describe(): string {
    return this.description
  }

  async authorization(signal?: AbortSignal): Promise<string> {
    if (!this.token || needsRefresh(this.token, this.now())) {
      // Parallel downloads asking at once share one token request.
      this.pending ??= this.fetchToken(signal).finally(() => (this.pending = undefined))
      this.token = await this.pending
    }
    return `Bearer ${this.token.value}`
  }

  refresh(): boolean {
    this.token = undefined
    return true
  }
}

// --- OAuth2 / OIDC ------------------------------------------------------------------------------

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

export type Grant = 'client-credentials' | 'token-exchange' | 'client-assertion'

export interface TokenRequestParams {
  readonly clientId?: string
  readonly clientSecret?: string
  readonly scope?: string
  readonly audience?: string
  /** The GitHub token: the subject (token-exchange) or the client assertion. */
  readonly githubToken?: string
  /** token_endpoint_auth_methods_supported from discovery, if any. */
  readonly authMethods?: readonly string[]
}

/** The form body and headers of a token request (RFC 6749 §4.4, RFC 8693, RFC 7523 §2.2). */
export function tokenRequest(grant: Grant, p: TokenRequestParams): { body: string; headers: Record<string, string> } {
  const form = new URLSearchParams()
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  }
  if (grant === 'token-exchange') {
    form.set('grant_type', TOKEN_EXCHANGE)
    form.set('subject_token', p.githubToken ?? '')
    form.set('subject_token_type', JWT_TOKEN_TYPE)
    form.set('requested_token_type', ACCESS_TOKEN_TYPE)
  } else {
    form.set('grant_type', 'client_credentials')
  }
  if (grant === 'client-assertion') {
    form.set('client_assertion_type', JWT_BEARER_ASSERTION)
    form.set('client_assertion', p.githubToken ?? '')
    if (p.clientId) form.set('client_id', p.clientId)
  } else if (p.clientId && p.clientSecret) {
    // client_secret_basic is the RFC's default; use post only when the IdP offers only that.
    const methods = p.authMethods ?? []
    if (methods.includes('client_secret_post') && !methods.includes('client_secret_basic')) {
      form.set('client_id', p.clientId)
      form.set('client_secret', p.clientSecret)
    } else {
      // RFC 6749 §2.3.1: each part form-encoded before base64.
      const pair = `${formEncode(p.clientId)}:${formEncode(p.clientSecret)}`
      headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`
    }
  } else if (p.clientId) {
    form.set('client_id', p.clientId)
  }
  if (p.scope) form.set('scope', p.scope)
  if (p.audience) {
    // Auth0/Keycloak/Databricks read `audience`; RFC 8707 IdPs read `resource` (an absolute URI).
    form.set('audience', p.audience)
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p.audience)) form.set('resource', p.audience)
  }
  return { body: form.toString(), headers }
}

function formEncode(s: string): string {
  return new URLSearchParams({ s }).toString().slice(2)
}

/** What to fix for an OAuth error code from the token endpoint. */
export function tokenErrorHint(grant: Grant, error: string | undefined): string {
  switch (error) {
    case 'invalid_client':
      return grant === 'client-assertion'
        ? 'the IdP did not accept the GitHub token as client assertion: check oidc-client-id and its federated credential (issuer, subject, oidc-github-audience)'
        : 'check oidc-client-id and oidc-client-secret'
    case 'invalid_grant':
      return grant === 'token-exchange'
        ? "the IdP does not trust the job's GitHub token: check its trust policy (issuer, subject) and oidc-github-audience"
        : 'check the IdP client configuration'
    case 'invalid_scope':
      return 'check oidc-scope'
    case 'invalid_target':
      return 'check oidc-audience (the IdP does not know that resource)'
    case 'unauthorized_client':
    case 'unsupported_grant_type':
      return `allow the ${grant} grant for this client at the IdP, or choose another oidc-github-token mode`
    default:
      return 'check oidc-issuer and the IdP client configuration'
  }
}

export interface Discovery {
  readonly tokenEndpoint: string
  readonly authMethods?: readonly string[]
}

/** Candidate metadata URLs: OIDC discovery (appended), then RFC 8414 (inserted after the host). */
export function discoveryUrls(issuer: string): string[] {
  const base = issuer.replace(/\/+$/, '')
  const u = new URL(base)
  const path = u.pathname.replace(/\/+$/, '')
  return [`${base}/.well-known/openid-configuration`, `${u.origin}/.well-known/oauth-authorization-server${path}`]
}

async function fetchJson(
  http: HttpTransport,
  url: string,
  init: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string },
  what: string,
  urlInput: string,
  signal?: AbortSignal,
): Promise<{ status: number; json: unknown; text: string; contentType?: string }> {
  try {
    // Token requests are safe to repeat: a lost answer only costs a second token.
    const res = await http.request({ ...init, url, signal, idempotent: true })
    const text = await res.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: res.status, json, text, contentType: res.headers['content-type'] }
  } catch (err) {
    if (err instanceof HttpConnectionError) throw new MlflowError(connectionMessage(err, what, urlInput))
    throw err
  }
}

export async function discover(http: HttpTransport, issuer: string, signal?: AbortSignal): Promise<Discovery> {
  const tried: string[] = []
  for (const url of discoveryUrls(issuer)) {
    const res = await fetchJson(
      http,
      url,
      { method: 'GET', headers: { accept: 'application/json' } },
      `the OIDC issuer ${issuer}`,
      'oidc-issuer',
      signal,
    )
    const doc = res.json as Record<string, unknown> | undefined
    if (res.status === 200 && typeof doc?.token_endpoint === 'string') {
      // OIDC Discovery §4.3, RFC 8414 §3.3: a document naming another issuer must not be used
      // (its token endpoint would receive our credentials). inputs.ts drops a trailing slash,
      // which some IdPs (Auth0) keep in their issuer: that one difference is no other issuer.
      const named = typeof doc.issuer === 'string' ? doc.issuer : undefined
      if (named === undefined || named.replace(/\/$/, '') !== issuer.replace(/\/$/, '')) {
        throw new MlflowError(
          `the OIDC discovery document ${url} names ${named === undefined ? 'no issuer' : `issuer ${JSON.stringify(named)}`}, not ${JSON.stringify(issuer)} as configured in oidc-issuer (or MLFLOW_TRACKING_OIDC_ISSUER): they must be identical (OpenID Connect Discovery §4.3, RFC 8414 §3.3); set oidc-issuer to the IdP's issuer exactly`,
        )
      }
      const methods = doc.token_endpoint_auth_methods_supported
      return {
        tokenEndpoint: doc.token_endpoint,
        authMethods: Array.isArray(methods) ? methods.map(String) : undefined,
      }
    }
    tried.push(`${url} → HTTP ${res.status}${res.status === 200 ? ' without token_endpoint' : ''}`)
  }
  throw new MlflowError(
    `OIDC issuer ${issuer} has no discovery document (${tried.join('; ')}): set oidc-issuer to the issuer URL itself, e.g. https://keycloak.example/realms/<realm>`,
  )
}

/** POSTs a token request and returns the masked token. */
async function requestToken(
  http: HttpTransport,
  discovery: Discovery,
  grant: Grant,
  params: TokenRequestParams,
  deps: Pick<AuthDeps, 'mask'> & { now: () => number },
  signal?: AbortSignal,
): Promise<Token> {
  const { body, headers } = tokenRequest(grant, { ...params, authMethods: discovery.authMethods })
  const endpoint = discovery.tokenEndpoint
  const res = await fetchJson(
    http,
    endpoint,
    { method: 'POST', headers, body },
    `the OIDC token endpoint ${endpoint}`,
    'oidc-issuer',
    signal,
  )
  const doc = res.json as Record<string, unknown> | undefined
  if (res.status === 200 && typeof doc?.access_token === 'string') {
    deps.mask(doc.access_token)
    const obtainedAt = deps.now()
    return { value: doc.access_token, obtainedAt, expiresAt: tokenExpiry(doc.access_token, obtainedAt, doc.expires_in) }
  }
  const err = parseErrorJson(res.text)
  const said = err
    ? `${err.code ?? 'error'}${err.message && err.message !== err.code ? ` (${err.message})` : ''}`
    : `HTTP ${res.status} with ${bodyKind(res.contentType, res.text)}: "${firstLine(res.contentType, res.text)}"`
  throw new MlflowError(
    `token endpoint ${endpoint} refused the ${grant} request: ${said}; ${tokenErrorHint(grant, err?.code)}`,
    res.status,
    err?.code,
  )
}

/** The job's GitHub OIDC token, checking first that the job may have one. */
async function githubIdToken(deps: AuthDeps, audience: string | undefined, mode: string): Promise<string> {
  for (const key of ['ACTIONS_ID_TOKEN_REQUEST_URL', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN']) {
    if (!deps.env[key]) {
      throw new MlflowError(
        `oidc-github-token: ${mode} needs the job's GitHub OIDC token, but ${key} is not set: add \`permissions: id-token: write\` to the job (pull requests from forks never get one)`,
      )
    }
  }
  let token: string
  try {
    token = await deps.getIdToken(audience)
  } catch (err) {
    throw new MlflowError(
      `could not get the job's GitHub OIDC token${audience ? ` for audience ${audience}` : ''}: ${errorMessage(err)}`,
    )
  }
  deps.mask(token)
  return token
}

/** Picks the provider the inputs ask for. Inputs were validated (one method at most). */
export function createAuth(inputs: MlflowInputs, deps: AuthDeps): AuthProvider {
  const now = deps.now ?? Date.now
  if (inputs.token) return bearerAuth(inputs.token, 'mlflow-token')
  if (inputs.username && inputs.password) return basicAuth(inputs.username, inputs.password, deps.mask)
  if (!inputs.oidc) return NO_AUTH
  return oidcAuth(inputs.oidc, deps, now)
}

function oidcAuth(o: OidcInputs, deps: AuthDeps, now: () => number): AuthProvider {
  const tokenDeps = { mask: deps.mask, now }
  if (o.githubToken === 'bearer') {
    const audience = o.githubAudience ?? o.audience
    return new TokenAuth(
      `the job's GitHub OIDC token${audience ? ` (audience ${audience})` : ''} as bearer (oidc-github-token: bearer)`,
      async () => {
        const value = await githubIdToken(deps, audience, 'bearer')
        const obtainedAt = now()
        return { value, obtainedAt, expiresAt: tokenExpiry(value, obtainedAt, undefined) }
      },
      now,
    )
  }
  const issuer = o.issuer!
  let discovery: Discovery | undefined
  const endpoint = async (signal?: AbortSignal) => (discovery ??= await discover(deps.http, issuer, signal))
  const base = { clientId: o.clientId, scope: o.scope, audience: o.audience }
  // The GitHub token's audience must be one the IdP trusts; the issuer is the usual convention.
  const githubAudience = o.githubAudience ?? issuer

  if (o.githubToken === 'token-exchange') {
    return new TokenAuth(
      `the job's GitHub OIDC token exchanged at ${issuer}${o.clientId ? ` by client "${o.clientId}"` : ''} (oidc-github-token: token-exchange)`,
      async (signal) => {
        const githubToken = await githubIdToken(deps, githubAudience, 'token-exchange')
        const params = { ...base, clientSecret: o.clientSecret, githubToken }
        return requestToken(deps.http, await endpoint(signal), 'token-exchange', params, tokenDeps, signal)
      },
      now,
    )
  }
  if (o.githubToken === 'client-assertion') {
    return new TokenAuth(
      `the job's GitHub OIDC token as client assertion for client "${o.clientId}" at ${issuer} (oidc-github-token: client-assertion)`,
      async (signal) => {
        const githubToken = await githubIdToken(deps, githubAudience, 'client-assertion')
        return requestToken(
          deps.http,
          await endpoint(signal),
          'client-assertion',
          { ...base, githubToken },
          tokenDeps,
          signal,
        )
      },
      now,
    )
  }
  return new TokenAuth(
    `OIDC client credentials of client "${o.clientId}" at ${issuer} (oidc-client-id/oidc-client-secret)`,
    async (signal) => {
      const params = { ...base, clientSecret: o.clientSecret }
      return requestToken(deps.http, await endpoint(signal), 'client-credentials', params, tokenDeps, signal)
    },
    now,
  )
}

/**
 * Fetches a GitHub Actions ID token the way @actions/core's getIDToken does (GET the request URL
 * plus `&audience=`, bearer the request token, answer `{value}`), for the CLI and tests.
 */
export async function fetchGithubIdToken(
  http: HttpTransport,
  env: Readonly<Record<string, string | undefined>>,
  audience: string | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL
  const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN
  if (!url || !requestToken) throw new Error('Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable')
  const full = audience ? `${url}&audience=${encodeURIComponent(audience)}` : url
  const res = await http.request({
    method: 'GET',
    url: full,
    headers: { authorization: `Bearer ${requestToken}`, accept: 'application/json' },
    signal,
  })
  const text = await res.text()
  const value = res.status === 200 ? (JSON.parse(text) as { value?: unknown }).value : undefined
  if (typeof value !== 'string')
    throw new Error(`ID token request failed with HTTP ${res.status}: ${firstLine(res.headers['content-type'], text)}`)
  return value
}
