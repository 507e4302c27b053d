// Credentials for MLflow behind one interface: static (bearer, basic) and token providers
// (OAuth2 client credentials with OIDC discovery; the job's GitHub OIDC token used as is,
// exchanged per RFC 8693, or as an RFC 7523 client assertion). The protocol itself is oauth.ts's;
// here the choice of provider and the tokens' lifetime. Every token obtained is masked at once;
// messages name the credential (describe()), never its value.
import { errorMessage } from '../util/errors.js'
import type { HttpTransport } from '../util/http.js'
import { MlflowError } from './errors.js'
import { OidcIssuer, type Grant, type GrantParams } from './oauth.js'
import type { MlflowOptions, OidcOptions } from './options.js'

/** The credentials to send to MLflow; at most one kind is set (the caller validated that). */
export type MlflowAuthOptions = Partial<Pick<MlflowOptions, 'token' | 'username' | 'password' | 'oidc'>>

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
  /** `core.getIDToken` in the action and the CLI; an audience-aware fetch in tests. */
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

function jwtClaims(token: string): Record<string, unknown> | undefined {
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

/** Picks the provider the options ask for. */
export function createAuth(options: MlflowAuthOptions, deps: AuthDeps): AuthProvider {
  const now = deps.now ?? Date.now
  if (options.token) return bearerAuth(options.token, 'mlflow-token')
  if (options.username && options.password) return basicAuth(options.username, options.password, deps.mask)
  if (!options.oidc) return NO_AUTH
  return oidcAuth(options.oidc, deps, now)
}

function oidcAuth(o: OidcOptions, deps: AuthDeps, now: () => number): AuthProvider {
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
  const issuer = new OidcIssuer(deps.http, o.issuer!)
  const base = { clientId: o.clientId, scope: o.scope, audience: o.audience }
  // The GitHub token's audience must be one the IdP trusts; the issuer is the usual convention.
  const githubAudience = o.githubAudience ?? issuer.issuer
  /** Requests a token, masks it at once and notes when to ask again. */
  const token = async (grant: Grant, params: GrantParams, signal?: AbortSignal): Promise<Token> => {
    const res = await issuer.token(grant, params, signal)
    deps.mask(res.access_token)
    const obtainedAt = now()
    return { value: res.access_token, obtainedAt, expiresAt: tokenExpiry(res.access_token, obtainedAt, res.expires_in) }
  }

  if (o.githubToken === 'token-exchange') {
    return new TokenAuth(
      `the job's GitHub OIDC token exchanged at ${issuer.issuer}${o.clientId ? ` by client "${o.clientId}"` : ''} (oidc-github-token: token-exchange)`,
      async (signal) => {
        const githubToken = await githubIdToken(deps, githubAudience, 'token-exchange')
        return token('token-exchange', { ...base, clientSecret: o.clientSecret, githubToken }, signal)
      },
      now,
    )
  }
  if (o.githubToken === 'client-assertion') {
    return new TokenAuth(
      `the job's GitHub OIDC token as client assertion for client "${o.clientId}" at ${issuer.issuer} (oidc-github-token: client-assertion)`,
      async (signal) => {
        const githubToken = await githubIdToken(deps, githubAudience, 'client-assertion')
        return token('client-assertion', { ...base, githubToken }, signal)
      },
      now,
    )
  }
  return new TokenAuth(
    `OIDC client credentials of client "${o.clientId}" at ${issuer.issuer} (oidc-client-id/oidc-client-secret)`,
    (signal) => token('client-credentials', { ...base, clientSecret: o.clientSecret }, signal),
    now,
  )
}
