// The rig's identity provider, run with Node 24 (`$NODE24 test/rig/oidc/provider.ts`; types are
// stripped, so erasable syntax only). One process, two loopback listeners:
//
// * RIG_OIDC_PORT (5062): a real OpenID provider (npm `oidc-provider` 9). client_credentials with
//   resource indicators; access tokens are JWTs (RS256, typ at+jwt, aud = the resource) carrying
//   `email` and `groups`, which is what the OIDC-protected MLflow (mlflow-oidc-auth) checks.
// * RIG_GHA_OIDC_PORT (5063): a stand-in for GitHub Actions' ID-token service
//   (`ACTIONS_ID_TOKEN_REQUEST_URL`): GET /token?api-version=2.0&audience=X with
//   `Authorization: Bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>` answers {"value": "<JWT>"}, signed by a
//   key of its own and discoverable at /.well-known/openid-configuration like the real issuer.
//
// Federation (a GitHub token in, an IdP access token out) works two ways, as real IdPs offer it:
//
// (a) RFC 8693 token exchange is a grant type of its own, so it is registered as one
//     (provider.registerGrantType): the handler verifies the subject token and mints the same kind
//     of access token the client_credentials grant does. Client authentication is optional: a
//     request that names no client is served as the public federated client.
// (b) RFC 7523 client assertion on client_credentials ("federated credential", as in Entra ID):
//     here the GitHub token *is* the client authentication. oidc-provider's private_key_jwt insists
//     on iss = sub = client_id and a key registered on the client, which a third-party token can
//     never satisfy, so a small middleware in front of the token endpoint verifies the assertion
//     against the trust policy (issuer, audience, subject pattern) and, once verified, hands the
//     request on as the federated client (registered with token_endpoint_auth_method "none").
//     That client is refused by the same middleware whenever no verified GitHub token came with
//     the request, so "none" never means "anyone".
//
// In both modes the GitHub identity is remembered for the request and mapped onto the issued
// token: sub = the GitHub subject, email = github-actions@<owner>.example (MLflow needs a username;
// GitHub tokens carry no email), groups = the users' group.
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as querystring from 'node:querystring'
import Provider, { errors } from 'oidc-provider'
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose'
import type { JWK, JWTPayload } from 'jose'

const env = (key: string, fallback?: string): string => {
  const value = process.env[key] ?? fallback
  if (value === undefined || value === '') throw new Error(`provider.ts: ${key} is not set`)
  return value
}

const HOST = '127.0.0.1'
const OIDC_PORT = Number(env('RIG_OIDC_PORT', '5062'))
const GHA_PORT = Number(env('RIG_GHA_OIDC_PORT', '5063'))
const STATE_DIR = env('RIG_OIDC_STATE_DIR')
const ISSUER = `http://${HOST}:${OIDC_PORT}`
const GHA_ISSUER = `http://${HOST}:${GHA_PORT}`
// The one protected resource: the OIDC-protected MLflow. Tokens default to it.
const AUDIENCE = env('RIG_OIDC_AUDIENCE')
const USERS_GROUP = env('RIG_OIDC_USERS_GROUP', 'mlflow-users')
const ADMINS_GROUP = env('RIG_OIDC_ADMINS_GROUP', 'mlflow-admins')
const GHA_REQUEST_TOKEN = env('RIG_GHA_REQUEST_TOKEN')
const GHA_OWNER = env('RIG_GHA_OWNER', 'acme')
const GHA_REPO = env('RIG_GHA_REPOSITORY', `${GHA_OWNER}/wine`)
// Trust policy for GitHub tokens presented to this IdP (both exchange modes).
const GHA_TRUSTED_AUDIENCES = env('RIG_GHA_EXCHANGE_AUDIENCES', ISSUER).split(',')
const GHA_TRUSTED_SUBJECT = new RegExp(env('RIG_GHA_TRUSTED_SUBJECT', `^repo:${GHA_OWNER}/[^:]+:`))
const FEDERATED_CLIENT = env('RIG_OIDC_FEDERATED_CLIENT_ID')

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const TT = 'urn:ietf:params:oauth:token-type:'

// --- keys: persisted so a restarted IdP keeps verifying tokens MLflow has cached keys for --------
type KeyPair = { private: JWK; public: JWK }
async function loadKey(name: string): Promise<KeyPair> {
  const file = join(STATE_DIR, `${name}-key.json`)
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as KeyPair
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const kid = `${name}-${randomUUID().slice(0, 8)}`
  const pair: KeyPair = {
    private: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' },
    public: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
  }
  mkdirSync(STATE_DIR, { recursive: true })
  writeFileSync(file, JSON.stringify(pair), { mode: 0o600 })
  return pair
}
const idpKey = await loadKey('idp')
const ghaKey = await loadKey('github')
const ghaSigningKey = await importJWK(ghaKey.private, 'RS256')
const ghaJwks = createLocalJWKSet({ keys: [ghaKey.public] })

// --- who each client is, as MLflow will see it ----------------------------------------------------
type Identity = { sub?: string; email: string; groups: string[] }
const clientIdentities: Record<string, Identity> = {}
const clients: Record<string, unknown>[] = []
function confidential(idKey: string, secretKey: string, email: string, groups: string[]): void {
  const id = env(idKey)
  clients.push({
    client_id: id,
    client_secret: env(secretKey),
    grant_types: ['client_credentials', TOKEN_EXCHANGE],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })
  clientIdentities[id] = { email, groups }
}
confidential('RIG_OIDC_CLIENT_ID', 'RIG_OIDC_CLIENT_SECRET', 'mlflow-k8s-deploy@rig.example', [USERS_GROUP])
confidential('RIG_OIDC_ADMIN_CLIENT_ID', 'RIG_OIDC_ADMIN_CLIENT_SECRET', 'rig-admin@rig.example', [
  ADMINS_GROUP,
  USERS_GROUP,
])
confidential('RIG_OIDC_NOPERM_CLIENT_ID', 'RIG_OIDC_NOPERM_CLIENT_SECRET', 'rig-noperm@rig.example', [USERS_GROUP])
// The federated client: reached only with a verified GitHub token (middleware below).
clients.push({
  client_id: FEDERATED_CLIENT,
  grant_types: ['client_credentials', TOKEN_EXCHANGE],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'none',
})
// The browser-login client MLflow's plugin is configured with (authorization code; not used by tests).
clients.push({
  client_id: env('RIG_OIDC_UI_CLIENT_ID'),
  client_secret: env('RIG_OIDC_UI_CLIENT_SECRET'),
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: [env('RIG_OIDC_UI_REDIRECT_URI')],
})

// GitHub identities verified during the current request (keyed by the Koa context).
const githubIdentity = new WeakMap<object, JWTPayload>()

function identityFromGithub(claims: JWTPayload): Identity {
  return {
    sub: String(claims.sub),
    email: `github-actions@${String(claims.repository_owner ?? GHA_OWNER).toLowerCase()}.example`,
    groups: [USERS_GROUP],
  }
}

async function verifyGithubToken(token: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(token, ghaJwks, {
    issuer: GHA_ISSUER,
    audience: GHA_TRUSTED_AUDIENCES,
    algorithms: ['RS256'],
  })
  if (typeof payload.sub !== 'string' || !GHA_TRUSTED_SUBJECT.test(payload.sub)) {
    throw new Error(`subject ${String(payload.sub)} is not trusted by this IdP`)
  }
  return payload
}

function resourceServer(resource: string) {
  if (resource !== AUDIENCE) throw new errors.InvalidTarget(`unknown resource ${resource}`)
  return {
    scope: 'mlflow',
    audience: resource,
    accessTokenTTL: 3600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  }
}

const provider = new Provider(ISSUER, {
  clients,
  jwks: { keys: [idpKey.private] },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
  ttl: { ClientCredentials: 3600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => AUDIENCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx: unknown, resource: string) => resourceServer(resource),
    },
  },
  // Interactive login is not part of the rig; the plugin only needs the endpoints to exist.
  interactions: { url: () => '/interaction-not-supported' },
  findAccount: () => undefined,
  extraTokenClaims: (ctx: object, token: { clientId: string }) => {
    const github = githubIdentity.get(ctx)
    if (github) {
      const id = identityFromGithub(github)
      return { email: id.email, groups: id.groups, repository: github.repository }
    }
    if (token.clientId === FEDERATED_CLIENT) throw new Error('federated client without a verified GitHub token')
    const id = clientIdentities[token.clientId]
    return id ? { email: id.email, groups: id.groups } : undefined
  },
  formats: {
    customizers: {
      // A token that stands for a GitHub workload is about that workload, whichever client asked.
      jwt: (ctx: object, _token: unknown, jwt: { payload: Record<string, unknown> }) => {
        const github = githubIdentity.get(ctx)
        if (github) jwt.payload.sub = identityFromGithub(github).sub
      },
    },
  },
})
provider.proxy = false

// (a) RFC 8693 token exchange.
provider.registerGrantType(
  TOKEN_EXCHANGE,
  async (ctx: { oidc: { params: Record<string, string | undefined>; client: unknown }; body: unknown }) => {
    const p = ctx.oidc.params
    if (!p.subject_token) throw new errors.InvalidRequest('missing required parameter subject_token')
    if (p.subject_token_type !== `${TT}jwt` && p.subject_token_type !== `${TT}id_token`) {
      throw new errors.InvalidRequest(`unsupported subject_token_type ${String(p.subject_token_type)}`)
    }
    if (
      p.requested_token_type !== undefined &&
      p.requested_token_type !== `${TT}access_token` &&
      p.requested_token_type !== `${TT}jwt`
    ) {
      throw new errors.InvalidRequest(`unsupported requested_token_type ${p.requested_token_type}`)
    }
    if (p.actor_token !== undefined) throw new errors.InvalidRequest('actor_token is not supported')
    let claims: JWTPayload
    try {
      claims = await verifyGithubToken(p.subject_token)
    } catch (err) {
      throw new errors.InvalidGrant(`subject_token rejected: ${(err as Error).message}`)
    }
    githubIdentity.set(ctx, claims)
    // `audience` (logical name) and `resource` (URI) both name the target; only MLflow exists.
    const target = p.resource ?? p.audience ?? AUDIENCE
    const token = new provider.ClientCredentials({ client: ctx.oidc.client, scope: 'mlflow' })
    token.resourceServer = { ...resourceServer(target), identifier: () => target }
    const value = await token.save()
    ctx.body = {
      access_token: value,
      issued_token_type: `${TT}access_token`,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: 'mlflow',
    }
  },
  [
    'subject_token',
    'subject_token_type',
    'requested_token_type',
    'audience',
    'resource',
    'scope',
    'actor_token',
    'actor_token_type',
  ],
  ['audience', 'resource'],
)

// The slice of Koa's context the middleware touches.
type KoaContext = {
  method: string
  path: string
  req: IncomingMessage
  headers: IncomingMessage['headers']
  request: { body?: unknown }
  status: number
  body: unknown
  is: (type: string) => string | false | null
  set: (k: string, v: string) => void
}

// (b) the federated-credential front door of the token endpoint (see the header comment).
function oauthError(
  ctx: Pick<KoaContext, 'status' | 'body' | 'set'>,
  status: number,
  error: string,
  description: string,
) {
  ctx.status = status
  ctx.set('Cache-Control', 'no-store')
  ctx.body = { error, error_description: description }
}
async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
provider.use(async (ctx: KoaContext, next: () => Promise<void>) => {
  if (ctx.method !== 'POST' || ctx.path !== '/token' || !ctx.is('application/x-www-form-urlencoded')) {
    return next()
  }
  const body = querystring.parse(await readBody(ctx.req)) as Record<string, string | string[] | undefined>
  const one = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : undefined)
  let verified = false
  const assertion = one('client_assertion')
  if (assertion !== undefined && one('client_assertion_type') === JWT_BEARER_ASSERTION) {
    let unverifiedIss: unknown
    try {
      unverifiedIss = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')).iss
    } catch {
      unverifiedIss = undefined
    }
    if (unverifiedIss === GHA_ISSUER) {
      const clientId = one('client_id') ?? FEDERATED_CLIENT
      if (clientId !== FEDERATED_CLIENT) {
        return oauthError(ctx, 401, 'invalid_client', `client ${clientId} has no federated credential`)
      }
      try {
        githubIdentity.set(ctx, await verifyGithubToken(assertion))
      } catch (err) {
        return oauthError(ctx, 401, 'invalid_client', `client_assertion rejected: ${(err as Error).message}`)
      }
      delete body.client_assertion
      delete body.client_assertion_type
      body.client_id = FEDERATED_CLIENT
      verified = true
    }
  }
  const anyClientAuth =
    ctx.headers.authorization !== undefined ||
    body.client_id !== undefined ||
    body.client_secret !== undefined ||
    body.client_assertion !== undefined
  if (one('grant_type') === TOKEN_EXCHANGE && !anyClientAuth) body.client_id = FEDERATED_CLIENT
  if (body.client_id === FEDERATED_CLIENT && !verified && one('grant_type') !== TOKEN_EXCHANGE) {
    return oauthError(
      ctx,
      401,
      'invalid_client',
      'the federated client authenticates with a GitHub token (client_assertion)',
    )
  }
  // oidc-provider accepts an already parsed body (it warns once about it).
  ctx.request.body = body
  return next()
})

provider.on('grant.success', (ctx: { oidc: { params: { grant_type?: string }; client?: { clientId: string } } }) => {
  const github = githubIdentity.get(ctx)
  console.log(
    `[idp] ${ctx.oidc.params.grant_type} for ${ctx.oidc.client?.clientId}${github ? ` as ${String(github.sub)}` : ''}`,
  )
})
provider.on('grant.error', (_ctx: unknown, err: Error & { error_description?: string; error_detail?: string }) => {
  console.log(`[idp] grant error: ${err.message} ${err.error_description ?? ''} ${err.error_detail ?? ''}`)
})
provider.on('server_error', (_ctx: unknown, err: Error) => console.error('[idp] server_error', err))

provider.listen(OIDC_PORT, HOST)

// --- the GitHub Actions ID-token service ------------------------------------------------------------
let runId = 1000
async function issueGithubToken(audience: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  runId += 1
  const sha = '0123456789abcdef0123456789abcdef01234567'
  return new SignJWT({
    ref: 'refs/heads/main',
    sha,
    repository: GHA_REPO,
    repository_owner: GHA_OWNER,
    repository_owner_id: '1000001',
    repository_id: '2000002',
    repository_visibility: 'private',
    run_id: String(runId),
    run_number: '7',
    run_attempt: '1',
    actor: 'octo-deployer',
    actor_id: '3000003',
    workflow: 'deploy',
    workflow_ref: `${GHA_REPO}/.github/workflows/deploy.yml@refs/heads/main`,
    workflow_sha: sha,
    job_workflow_ref: `${GHA_REPO}/.github/workflows/deploy.yml@refs/heads/main`,
    job_workflow_sha: sha,
    event_name: 'push',
    ref_type: 'branch',
    ref_protected: 'true',
    head_ref: '',
    base_ref: '',
    runner_environment: 'github-hosted',
  })
    .setProtectedHeader({ alg: 'RS256', kid: ghaKey.public.kid!, typ: 'JWT' })
    .setIssuer(GHA_ISSUER)
    .setSubject(`repo:${GHA_REPO}:ref:refs/heads/main`)
    .setAudience(audience)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setNotBefore(now - 5)
    .setExpirationTime(now + 600)
    .sign(ghaSigningKey)
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(body))
}

createServer((req, res) => {
  const url = new URL(req.url ?? '/', GHA_ISSUER)
  if (req.method !== 'GET') return json(res, 405, { message: 'method not allowed' })
  if (url.pathname === '/.well-known/openid-configuration') {
    return json(res, 200, {
      issuer: GHA_ISSUER,
      jwks_uri: `${GHA_ISSUER}/.well-known/jwks`,
      subject_types_supported: ['public', 'pairwise'],
      response_types_supported: ['id_token'],
      claims_supported: [
        'sub',
        'aud',
        'exp',
        'iat',
        'iss',
        'jti',
        'nbf',
        'ref',
        'sha',
        'repository',
        'repository_owner',
        'run_id',
        'actor',
        'workflow',
      ],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid'],
    })
  }
  if (url.pathname === '/.well-known/jwks') return json(res, 200, { keys: [ghaKey.public] })
  if (url.pathname === '/token') {
    const auth = req.headers.authorization ?? ''
    if (auth !== `Bearer ${GHA_REQUEST_TOKEN}`) {
      return json(res, 401, { message: 'Bad credentials: ACTIONS_ID_TOKEN_REQUEST_TOKEN is missing or wrong' })
    }
    const audience = url.searchParams.get('audience') || `https://github.com/${GHA_OWNER}`
    issueGithubToken(audience).then(
      (value) => {
        console.log(`[gha] ID token issued for audience ${audience}`)
        json(res, 200, { value })
      },
      (err: Error) => json(res, 500, { message: err.message }),
    )
    return
  }
  json(res, 404, { message: 'Not Found' })
}).listen(GHA_PORT, HOST)

console.log(`[idp] issuer ${ISSUER}; GitHub-style ID tokens at ${GHA_ISSUER}/token (issuer ${GHA_ISSUER})`)
