// The OAuth 2.0 / OpenID Connect authorization server the MLflow credentials come from, spoken
// through oauth4webapi (https://github.com/panva/oauth4webapi): metadata discovery with the issuer
// check, client authentication, the token request and the checks on its answer. Requests go
// through the project's HTTP transport (CA bundle, proxy, timeouts, retries) by the library's
// customFetch hook. What stays here is what the library leaves to its caller: which grant and
// client authentication the inputs ask for, and errors that name the input to fix.
import * as oauth from 'oauth4webapi'
import { errorMessage } from '../util/errors.js'
import { HttpConnectionError, type HttpMethod, type HttpTransport } from '../util/http.js'
import { MlflowError, bodyKind, connectionMessage, firstLine, parseErrorJson } from './errors.js'

export type Grant = 'client-credentials' | 'token-exchange' | 'client-assertion'

export interface GrantParams {
  readonly clientId?: string
  readonly clientSecret?: string
  readonly scope?: string
  readonly audience?: string
  /** The GitHub token: the subject (token-exchange) or the client assertion. */
  readonly githubToken?: string
}

// RFC 8693 §2.1 and §3; RFC 7523 §2.2.
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

// The library's Client needs an id; a token exchange may name no client at all (the IdP serves it
// as its public client). This one is never sent: the ClientAuth below skips it.
const NO_CLIENT = 'no client named'

/** The grant's own parameters beyond grant_type and client authentication. */
function grantParameters(grant: Grant, p: GrantParams): URLSearchParams {
  const form = new URLSearchParams()
  if (grant === 'token-exchange') {
    form.set('subject_token', p.githubToken ?? '')
    form.set('subject_token_type', JWT_TOKEN_TYPE)
    form.set('requested_token_type', ACCESS_TOKEN_TYPE)
  }
  if (p.scope) form.set('scope', p.scope)
  if (p.audience) {
    // Auth0/Keycloak/Databricks read `audience`; RFC 8707 IdPs read `resource` (an absolute URI).
    form.set('audience', p.audience)
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p.audience)) form.set('resource', p.audience)
  }
  return form
}

/** How the client authenticates (RFC 6749 §2.3, RFC 7523 §2.2). */
function clientAuth(grant: Grant, p: GrantParams, as: oauth.AuthorizationServer): oauth.ClientAuth {
  if (grant === 'client-assertion') return presignedAssertion(p.githubToken ?? '')
  if (p.clientId && p.clientSecret) {
    // client_secret_basic is the RFC's default; use post only when the IdP offers only that.
    const methods = as.token_endpoint_auth_methods_supported ?? []
    return methods.includes('client_secret_post') && !methods.includes('client_secret_basic')
      ? oauth.ClientSecretPost(p.clientSecret)
      : oauth.ClientSecretBasic(p.clientSecret)
  }
  return p.clientId ? oauth.None() : () => undefined
}

/**
 * RFC 7523 §2.2 with a JWT someone else signed (the job's GitHub token): the library's
 * PrivateKeyJwt signs its own, so this only places the assertion in the request.
 */
function presignedAssertion(assertion: string): oauth.ClientAuth {
  return (_as, client, body) => {
    if (client.client_id !== NO_CLIENT) body.set('client_id', client.client_id)
    body.set('client_assertion_type', JWT_BEARER_ASSERTION)
    body.set('client_assertion', assertion)
  }
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

type FetchInit = oauth.CustomFetchOptions<string, URLSearchParams | undefined>

/** The library's fetch, over the project's transport. */
async function fetchVia(http: HttpTransport, url: string, init: FetchInit): Promise<Response> {
  // Discovery and token requests are safe to repeat: a lost answer only costs a second token.
  const res = await http.request({
    method: init.method as HttpMethod,
    url,
    headers: init.headers,
    body: init.body?.toString(),
    signal: init.signal,
    idempotent: true,
  })
  const text = await res.text()
  const headers = Object.entries(res.headers).filter((h): h is [string, string] => h[1] !== undefined)
  return new Response(text === '' ? null : text, { status: res.status, headers })
}

/** One authorization server, named by its issuer; its metadata is fetched once. */
export class OidcIssuer {
  private metadata: oauth.AuthorizationServer | undefined

  constructor(
    private readonly http: HttpTransport,
    readonly issuer: string,
  ) {}

  /** The request options: our transport; plain HTTP only when the issuer itself is plain HTTP. */
  private options(signal: AbortSignal | undefined, onRequest?: (url: string) => void) {
    return {
      signal,
      [oauth.customFetch]: (url: string, init: FetchInit) => (onRequest?.(url), fetchVia(this.http, url, init)),
      [oauth.allowInsecureRequests]: new URL(this.issuer).protocol === 'http:',
    }
  }

  /** OIDC discovery (appended well-known path), then RFC 8414 (inserted after the host). */
  async discover(signal?: AbortSignal): Promise<oauth.AuthorizationServer> {
    if (this.metadata) return this.metadata
    const tried: string[] = []
    for (const algorithm of ['oidc', 'oauth2'] as const) {
      let url = ''
      const res = await reach(`the OIDC issuer ${this.issuer}`, () =>
        oauth.discoveryRequest(new URL(this.issuer), { ...this.options(signal, (u) => (url = u)), algorithm }),
      )
      const as = res.status === 200 ? await this.checked(res, url) : undefined
      if (typeof as?.token_endpoint === 'string') return (this.metadata = as)
      tried.push(`${url} → HTTP ${res.status}${res.status === 200 ? ' without token_endpoint' : ''}`)
    }
    throw new MlflowError(
      `OIDC issuer ${this.issuer} has no discovery document (${tried.join('; ')}): set oidc-issuer to the issuer URL itself, e.g. https://keycloak.example/realms/<realm>`,
    )
  }

  /**
   * The metadata, once the library has checked it names our issuer (OIDC Discovery §4.3, RFC 8414
   * §3.3: another issuer's token endpoint would receive our credentials). Undefined when the
   * answer is no metadata document at all.
   */
  private async checked(res: Response, url: string): Promise<oauth.AuthorizationServer | undefined> {
    const doc: unknown = await res
      .clone()
      .json()
      .catch(() => undefined)
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined
    try {
      return await oauth.processDiscoveryResponse(new URL(this.issuer), res)
    } catch {
      // With a JSON object in hand, the library has nothing left to refuse but the issuer.
      const named = (doc as { issuer?: unknown }).issuer
      // inputs.ts drops a trailing slash, which some IdPs keep in their issuer: that one
      // difference is no other issuer.
      if (typeof named === 'string' && named.replace(/\/$/, '') === this.issuer.replace(/\/$/, ''))
        return doc as oauth.AuthorizationServer
      throw new MlflowError(
        `the OIDC discovery document ${url} names ${typeof named === 'string' ? `issuer ${JSON.stringify(named)}` : 'no issuer'}, not ${JSON.stringify(this.issuer)} as configured in oidc-issuer (or MLFLOW_TRACKING_OIDC_ISSUER): they must be identical (OpenID Connect Discovery §4.3, RFC 8414 §3.3); set oidc-issuer to the IdP's issuer exactly`,
      )
    }
  }

  /** Requests a token with the grant (RFC 6749 §4.4, RFC 8693, RFC 7523 §2.2). */
  async token(grant: Grant, p: GrantParams, signal?: AbortSignal): Promise<oauth.TokenEndpointResponse> {
    const as = await this.discover(signal)
    const client: oauth.Client = { client_id: p.clientId || NO_CLIENT }
    const auth = clientAuth(grant, p, as)
    const params = grantParameters(grant, p)
    const options = this.options(signal)
    const endpoint = String(as.token_endpoint)
    const res = await reach(`the OIDC token endpoint ${endpoint}`, () =>
      grant === 'token-exchange'
        ? oauth.genericTokenEndpointRequest(as, client, auth, TOKEN_EXCHANGE, params, options)
        : oauth.clientCredentialsGrantRequest(as, client, auth, params, options),
    )
    if (res.status !== 200) {
      // Worded here rather than by the library: the error code decides the hint, and an HTML page
      // from a proxy is reported as such.
      const text = await res.text()
      const contentType = res.headers.get('content-type') ?? undefined
      const err = parseErrorJson(text)
      const said = err
        ? `${err.code ?? 'error'}${err.message && err.message !== err.code ? ` (${err.message})` : ''}`
        : `HTTP ${res.status} with ${bodyKind(contentType, text)}: "${firstLine(contentType, text)}"`
      throw new MlflowError(
        `token endpoint ${endpoint} refused the ${grant} request: ${said}; ${tokenErrorHint(grant, err?.code)}`,
        res.status,
        err?.code,
      )
    }
    try {
      return grant === 'token-exchange'
        ? await oauth.processGenericTokenEndpointResponse(as, client, res)
        : await oauth.processClientCredentialsResponse(as, client, res)
    } catch (err) {
      // The library's messages describe the answer's shape, never a token's value.
      throw new MlflowError(
        `token endpoint ${endpoint} answered the ${grant} request with no usable token: ${errorMessage(err)}; check oidc-issuer and the IdP client configuration`,
      )
    }
  }
}

/** Words a request that got no answer, or that the library would not send, for oidc-issuer. */
async function reach<T>(what: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request()
  } catch (err) {
    if (err instanceof HttpConnectionError) throw new MlflowError(connectionMessage(err, what, 'oidc-issuer'))
    // E.g. a plain-HTTP token endpoint named by an HTTPS issuer: credentials go over TLS only.
    if (err instanceof oauth.OperationProcessingError)
      throw new MlflowError(`refused to send a request to ${what}: ${err.message}; check oidc-issuer`)
    throw err
  }
}
