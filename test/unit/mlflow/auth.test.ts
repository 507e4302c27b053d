import { mlflowInputs, oidcInputs } from '../../support/fixtures.js'
import {} from '../../support/fixtures.js'
import { Readable } from 'node:stream'
import { TokenAuth, createAuth, needsRefresh, tokenExpiry, type AuthDeps } from '../../../src/mlflow/auth.js'
import { OidcIssuer, tokenErrorHint, type Grant, type GrantParams } from '../../../src/mlflow/oauth.js'
import type { MlflowInputs } from '../../../src/inputs.js'
import { UndiciTransport, type HttpRequest, type HttpResponse, type HttpTransport } from '../../../src/util/http.js'
import { FAST_RETRY, fakeServer, json } from './fake-server.js'

const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`

describe('token lifetime', () => {
  test.each([
    ['expires_in number', 'opaque', 3600, 1000 + 3_600_000],
    ['expires_in string', 'opaque', '60', 1000 + 60_000],
    ['JWT exp when no expires_in', jwt({ exp: 2000 }), undefined, 2_000_000],
    ['default without either', 'opaque', undefined, 1000 + 300_000],
    ['zero expires_in ignored', 'opaque', 0, 1000 + 300_000],
  ])('%s', (_title, value, expiresIn, expected) => expect(tokenExpiry(value, 1000, expiresIn)).toBe(expected))

  test.each([
    // obtainedAt, expiresAt, now, refresh?
    [0, 3_600_000, 0, false],
    [0, 3_600_000, 3_539_999, false],
    [0, 3_600_000, 3_540_000, true], // one minute before expiry
    [0, 60_000, 29_999, false], // short-lived: halfway
    [0, 60_000, 30_000, true],
    [0, 60_000, 90_000, true],
  ])('obtained %i, expires %i, now %i → refresh %s', (obtainedAt, expiresAt, now, expected) =>
    expect(needsRefresh({ value: 't', obtainedAt, expiresAt }, now)).toBe(expected),
  )

  test('TokenAuth caches until shortly before expiry, shares one fetch, refreshes after a 401', async () => {
    let now = 0
    let fetches = 0
    const auth = new TokenAuth(
      'test token',
      async () => {
        fetches++
        await new Promise((r) => setTimeout(r, 5))
        return { value: `t${fetches}`, obtainedAt: now, expiresAt: now + 600_000 }
      },
      () => now,
    )
    const [a, b] = await Promise.all([auth.authorization(), auth.authorization()])
    expect([a, b, fetches]).toEqual(['Bearer t1', 'Bearer t1', 1])
    now = 500_000
    expect(await auth.authorization()).toBe('Bearer t1')
    now = 540_000
    expect(await auth.authorization()).toBe('Bearer t2')
    expect(auth.refresh()).toBe(true)
    expect(await auth.authorization()).toBe('Bearer t3')
  })
})

/** A transport that records each request and answers JSON from `answer`. */
function recording(answer: (req: HttpRequest) => [number, unknown]): HttpTransport & { sent: HttpRequest[] } {
  const sent: HttpRequest[] = []
  return {
    sent,
    request: async (req): Promise<HttpResponse> => {
      sent.push(req)
      const [status, value] = answer(req)
      const text = JSON.stringify(value)
      return {
        status,
        headers: { 'content-type': 'application/json' },
        body: Readable.from([text]),
        text: async () => text,
        discard: async () => undefined,
      }
    },
  }
}

/** An HTTPS IdP behind a recording transport: its metadata (plus `metadata`) and a token answer. */
function recordingIdp(metadata: object = {}, answer: object = { access_token: 'AT', token_type: 'Bearer' }) {
  const issuer = 'https://idp.example'
  const http = recording((req) =>
    req.url.includes('/.well-known/')
      ? [200, { issuer, token_endpoint: `${issuer}/token`, ...metadata }]
      : [200, answer],
  )
  return { http, idp: new OidcIssuer(http, issuer) }
}

/** The token request as sent on the wire, to an IdP offering `authMethods` for client authentication. */
async function tokenRequest(
  grant: Grant,
  p: GrantParams & { authMethods?: string[] },
): Promise<{ body: string; headers: Record<string, string> }> {
  const { http, idp } = recordingIdp({ token_endpoint_auth_methods_supported: p.authMethods })
  await idp.token(grant, p)
  const sent = http.sent.at(-1)!
  return { body: sent.body ?? '', headers: { ...sent.headers } }
}

// What the library's checks add, and the one parameter mix the rig's IdP relies on.
describe('token requests through oauth4webapi', () => {
  test('a token exchange naming no client sends no client authentication (the IdP serves its public client)', async () => {
    const r = await tokenRequest('token-exchange', { githubToken: 'GH' })
    expect(new URLSearchParams(r.body).has('client_id')).toBe(false)
    expect(r.headers.authorization).toBeUndefined()
  })

  test('a confidential client exchanging a token authenticates with its secret', async () => {
    const r = await tokenRequest('token-exchange', { githubToken: 'GH', clientId: 'c', clientSecret: 's' })
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from('c:s').toString('base64')}`)
  })

  test('an answer without token_type is no usable token (RFC 6749 §5.1)', async () => {
    const { idp } = recordingIdp({}, { access_token: 'AT' })
    await expect(idp.token('client-credentials', { clientId: 'c', clientSecret: 's' })).rejects.toThrow(
      /^token endpoint https:\/\/idp.example\/token answered the client-credentials request with no usable token: .*token_type.*; check oidc-issuer/,
    )
  })

  test('an HTTPS issuer naming a plain-HTTP token endpoint: no credentials sent', async () => {
    const { http, idp } = recordingIdp({ token_endpoint: 'http://idp.example/token' })
    await expect(idp.token('client-credentials', { clientId: 'c', clientSecret: 's' })).rejects.toThrow(
      'refused to send a request to the OIDC token endpoint http://idp.example/token: only requests to HTTPS are allowed; check oidc-issuer',
    )
    expect(http.sent.map((r) => r.url)).toEqual(['https://idp.example/.well-known/openid-configuration'])
  })

  test('expires_in as a string is read as seconds, and discovery is fetched once', async () => {
    const { http, idp } = recordingIdp({}, { access_token: 'AT', token_type: 'bearer', expires_in: '120' })
    expect((await idp.token('client-credentials', { clientId: 'c', clientSecret: 's' })).expires_in).toBe(120)
    await idp.token('client-credentials', { clientId: 'c', clientSecret: 's' })
    expect(http.sent.map((r) => r.url.replace('https://idp.example', ''))).toEqual([
      '/.well-known/openid-configuration',
      '/token',
      '/token',
    ])
  })
})

describe('tokenRequest', () => {
  const form = (body: string) => Object.fromEntries(new URLSearchParams(body))
  test('client credentials: secret in a Basic header, each part form-encoded', async () => {
    const r = await tokenRequest('client-credentials', {
      clientId: 'a b',
      clientSecret: 's:é',
      scope: 'mlflow',
      audience: 'https://mlflow.example',
    })
    expect(form(r.body)).toEqual({
      grant_type: 'client_credentials',
      scope: 'mlflow',
      audience: 'https://mlflow.example',
      resource: 'https://mlflow.example',
    })
    expect(Buffer.from(r.headers.authorization!.slice(6), 'base64').toString()).toBe('a+b:s%3A%C3%A9')
  })
  test('client credentials: post when the IdP offers only client_secret_post', async () => {
    const r = await tokenRequest('client-credentials', {
      clientId: 'a',
      clientSecret: 's',
      authMethods: ['client_secret_post', 'private_key_jwt'],
    })
    expect(form(r.body)).toEqual({ grant_type: 'client_credentials', client_id: 'a', client_secret: 's' })
    expect(r.headers.authorization).toBeUndefined()
  })
  test('an audience that is not a URI is not sent as resource', async () => {
    expect(
      form(
        (await tokenRequest('client-credentials', { clientId: 'a', clientSecret: 's', audience: 'mlflow-api' })).body,
      ),
    ).toEqual({
      grant_type: 'client_credentials',
      audience: 'mlflow-api',
    })
  })
  test('token exchange (RFC 8693), public client', async () => {
    expect(form((await tokenRequest('token-exchange', { githubToken: 'GH', clientId: 'fed' })).body)).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'GH',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      client_id: 'fed',
    })
  })
  test('client assertion (RFC 7523 §2.2)', async () => {
    expect(
      form((await tokenRequest('client-assertion', { githubToken: 'GH', clientId: 'fed', scope: 's' })).body),
    ).toEqual({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: 'GH',
      client_id: 'fed',
      scope: 's',
    })
  })
  test.each([
    ['client-credentials', 'invalid_client', /oidc-client-id and oidc-client-secret/],
    ['client-assertion', 'invalid_client', /federated credential/],
    ['token-exchange', 'invalid_grant', /trust policy/],
    ['client-credentials', 'invalid_scope', /oidc-scope/],
    ['client-credentials', 'invalid_target', /oidc-audience/],
    ['token-exchange', 'unsupported_grant_type', /allow the token-exchange grant/],
  ] as const)('hint for %s %s', (grant, error, expected) => expect(tokenErrorHint(grant, error)).toMatch(expected))
})

test.each([
  [
    'https://kc.example/realms/acme',
    [
      'https://kc.example/realms/acme/.well-known/openid-configuration',
      'https://kc.example/.well-known/oauth-authorization-server/realms/acme',
    ],
  ],
  [
    'https://idp.example/',
    [
      'https://idp.example/.well-known/openid-configuration',
      'https://idp.example/.well-known/oauth-authorization-server',
    ],
  ],
])('discovery URLs for %s', async (issuer, expected) => {
  const http = recording(() => [404, { error: 'not found' }])
  await new OidcIssuer(http, issuer).discover().catch(() => undefined)
  expect(http.sent.map((r) => r.url)).toEqual(expected)
})

// --- providers against a loopback IdP ---------------------------------------------------------------

const inputs = (over: Partial<MlflowInputs>): MlflowInputs => mlflowInputs({ trackingUri: 'http://mlflow', ...over })
const oidc = oidcInputs

describe('providers', () => {
  const masked: string[] = []
  const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
  const deps = (over: Partial<AuthDeps> = {}): AuthDeps => ({
    http,
    getIdToken: async (aud) => jwt({ aud, iss: 'gh' }),
    mask: (s) => void masked.push(s),
    env: { ACTIONS_ID_TOKEN_REQUEST_URL: 'http://gh/token?x=1', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'rt' },
    ...over,
  })
  afterAll(() => http.close())

  test('static providers describe themselves without their values', async () => {
    const bearer = createAuth(inputs({ token: 'sekrit' }), deps())
    expect(bearer.describe()).toBe('bearer token from mlflow-token')
    expect(await bearer.authorization()).toBe('Bearer sekrit')
    const basic = createAuth(inputs({ username: 'u', password: 'p4ss' }), deps())
    expect(basic.describe()).toBe('basic auth as user "u" (mlflow-username/mlflow-password)')
    expect(basic.describe()).not.toContain('p4ss')
    expect(await basic.authorization()).toBe(`Basic ${Buffer.from('u:p4ss').toString('base64')}`)
    expect(createAuth(inputs({}), deps()).describe()).toBe('no credentials')
  })

  test('client credentials: discovery, token masked and cached', async () => {
    const idp = await fakeServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration')
        return json(res, 200, { issuer: idp.url, token_endpoint: `${idp.url}/token` })
      json(res, 200, { access_token: 'AT-1', token_type: 'Bearer', expires_in: 3600 })
    })
    try {
      const auth = createAuth(
        inputs({ oidc: oidc({ issuer: idp.url, clientId: 'c', clientSecret: 's', audience: 'http://m' }) }),
        deps(),
      )
      expect(await auth.authorization()).toBe('Bearer AT-1')
      expect(await auth.authorization()).toBe('Bearer AT-1')
      expect(idp.requests.map((r) => r.url)).toEqual(['/.well-known/openid-configuration', '/token'])
      expect(masked).toContain('AT-1')
      expect(auth.describe()).toBe(
        `OIDC client credentials of client "c" at ${idp.url} (oidc-client-id/oidc-client-secret)`,
      )
    } finally {
      await idp.close()
    }
  })

  test('an issuer without discovery says so and what to set', async () => {
    const idp = await fakeServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' })
      res.end('<h1>Not Found</h1>')
    })
    try {
      const auth = createAuth(
        inputs({ oidc: oidc({ issuer: `${idp.url}/realms/x`, clientId: 'c', clientSecret: 's' }) }),
        deps(),
      )
      await expect(auth.authorization()).rejects.toThrow(
        /has no discovery document .*openid-configuration → HTTP 404.*set oidc-issuer to the issuer URL/,
      )
    } finally {
      await idp.close()
    }
  })

  test('a token endpoint error names the OAuth error and what to fix', async () => {
    const idp = await fakeServer((req, res) => {
      if (req.url?.startsWith('/.well-known/openid-configuration'))
        return json(res, 200, { issuer: idp.url, token_endpoint: `${idp.url}/token` })
      json(res, 401, { error: 'invalid_client', error_description: 'client authentication failed' })
    })
    try {
      const auth = createAuth(
        inputs({ oidc: oidc({ issuer: idp.url, clientId: 'c', clientSecret: 'wrong-secret' }) }),
        deps(),
      )
      const err = await auth.authorization().catch((e) => e)
      expect(err.message).toMatch(
        /refused the client-credentials request: invalid_client \(client authentication failed\); check oidc-client-id and oidc-client-secret/,
      )
      expect(err.message).not.toContain('wrong-secret')
    } finally {
      await idp.close()
    }
  })

  test('a token endpoint answering HTML says so', async () => {
    const idp = await fakeServer((req, res) => {
      if (req.url?.startsWith('/.well-known/openid-configuration'))
        return json(res, 200, { issuer: idp.url, token_endpoint: `${idp.url}/token` })
      res.writeHead(500, { 'content-type': 'text/html' })
      res.end('<html><title>Internal Server Error</title></html>')
    })
    try {
      const auth = createAuth(inputs({ oidc: oidc({ issuer: idp.url, clientId: 'c', clientSecret: 's' }) }), deps())
      await expect(auth.authorization()).rejects.toThrow(/HTTP 500 with an HTML page: "Internal Server Error"/)
    } finally {
      await idp.close()
    }
  })

  test('an unreachable issuer names oidc-issuer', async () => {
    const auth = createAuth(
      inputs({ oidc: oidc({ issuer: 'http://127.0.0.1:1', clientId: 'c', clientSecret: 's' }) }),
      deps(),
    )
    await expect(auth.authorization()).rejects.toThrow(
      /cannot reach the OIDC issuer http:\/\/127.0.0.1:1: connection refused.*check oidc-issuer/,
    )
  })

  test.each(['bearer', 'token-exchange', 'client-assertion'] as const)(
    'GitHub mode %s without id-token permission',
    async (mode) => {
      const o =
        mode === 'bearer'
          ? oidc({ githubToken: mode })
          : oidc({ githubToken: mode, issuer: 'http://127.0.0.1:1', clientId: 'f' })
      const auth = createAuth(inputs({ oidc: o }), deps({ env: {} }))
      await expect(auth.authorization()).rejects.toThrow(
        `oidc-github-token: ${mode} needs the job's GitHub OIDC token, but ACTIONS_ID_TOKEN_REQUEST_URL is not set: add \`permissions: id-token: write\` to the job`,
      )
    },
  )

  test('GitHub bearer: the ID token is requested with the audience, masked and sent', async () => {
    const audiences: (string | undefined)[] = []
    const token = jwt({ exp: 9_999_999_999 })
    const auth = createAuth(
      inputs({ oidc: oidc({ githubToken: 'bearer', githubAudience: 'https://mlflow.example' }) }),
      deps({ getIdToken: async (a) => (audiences.push(a), token) }),
    )
    expect(await auth.authorization()).toBe(`Bearer ${token}`)
    expect(await auth.authorization()).toBe(`Bearer ${token}`)
    expect(audiences).toEqual(['https://mlflow.example'])
    expect(masked).toContain(token)
  })

  test('GitHub token exchange: subject token posted to the discovered endpoint, audience defaults to the issuer', async () => {
    const audiences: (string | undefined)[] = []
    const idp = await fakeServer((req, res) => {
      if (req.url?.startsWith('/.well-known'))
        return json(res, 200, { issuer: idp.url, token_endpoint: `${idp.url}/token` })
      json(res, 200, {
        access_token: 'EXCHANGED',
        token_type: 'Bearer',
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        expires_in: 60,
      })
    })
    try {
      const auth = createAuth(
        inputs({ oidc: oidc({ githubToken: 'token-exchange', issuer: idp.url }) }),
        deps({ getIdToken: async (a) => (audiences.push(a), 'GHTOKEN') }),
      )
      expect(await auth.authorization()).toBe('Bearer EXCHANGED')
      expect(audiences).toEqual([idp.url])
      const body = new URLSearchParams(idp.requests[1]!.body)
      expect(body.get('subject_token')).toBe('GHTOKEN')
      expect(masked).toEqual(expect.arrayContaining(['GHTOKEN', 'EXCHANGED']))
    } finally {
      await idp.close()
    }
  })
})

// OpenID Connect Discovery §4.3 / RFC 8414 §3.3: the document must name the issuer it was fetched
// for, or a token endpoint of someone else's choosing would receive the client's credentials.
describe('discovery checks the issuer the document names', () => {
  const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
  afterAll(() => http.close())
  const serve = (docs: Record<string, (base: string) => object>) =>
    fakeServer((req, res) => {
      const doc = docs[req.url ?? '']
      if (doc) return json(res, 200, doc(idp.url))
      json(res, 404, { error: 'not found' })
    }).then((s) => (idp = s))
  let idp: Awaited<ReturnType<typeof fakeServer>>
  afterEach(() => idp?.close())

  test('the same issuer: accepted', async () => {
    await serve({ '/t1/.well-known/openid-configuration': (b) => ({ issuer: `${b}/t1`, token_endpoint: `${b}/tok` }) })
    expect((await new OidcIssuer(http, `${idp.url}/t1`).discover()).token_endpoint).toBe(`${idp.url}/tok`)
  })

  test('a trailing slash (Auth0 names https://tenant/; the input parser drops the slash): accepted', async () => {
    await serve({ '/.well-known/openid-configuration': (b) => ({ issuer: `${b}/`, token_endpoint: `${b}/tok` }) })
    expect((await new OidcIssuer(http, idp.url).discover()).token_endpoint).toBe(`${idp.url}/tok`)
  })

  test('a trailing slash after a path (the input parser drops it): accepted', async () => {
    await serve({ '/t1/.well-known/openid-configuration': (b) => ({ issuer: `${b}/t1/`, token_endpoint: `${b}/tok` }) })
    expect((await new OidcIssuer(http, `${idp.url}/t1`).discover()).token_endpoint).toBe(`${idp.url}/tok`)
  })

  test.each([
    ['another host', (b: string) => b.replace('127.0.0.1', 'idp.evil.example')],
    ['another path', (b: string) => `${b}/t2`],
    ['a different case', (b: string) => `${b}/T1`],
  ])('%s: refused, naming both and the input', async (_case, named) => {
    await serve({ '/t1/.well-known/openid-configuration': (b) => ({ issuer: named(b), token_endpoint: `${b}/tok` }) })
    await expect(new OidcIssuer(http, `${idp.url}/t1`).discover()).rejects.toThrow(
      `the OIDC discovery document ${idp.url}/t1/.well-known/openid-configuration names issuer "${named(idp.url)}", not "${idp.url}/t1" as configured in oidc-issuer (or MLFLOW_TRACKING_OIDC_ISSUER)`,
    )
  })

  test('no issuer in the document: refused', async () => {
    await serve({ '/.well-known/openid-configuration': (b) => ({ token_endpoint: `${b}/tok` }) })
    await expect(new OidcIssuer(http, idp.url).discover()).rejects.toThrow(
      /names no issuer, not "http:\/\/127.0.0.1:\d+" as configured/,
    )
  })

  test('RFC 8414 metadata (inserted after the host) is checked the same way', async () => {
    await serve({
      '/.well-known/oauth-authorization-server/t1': (b) => ({ issuer: `${b}/other`, token_endpoint: `${b}/tok` }),
    })
    await expect(new OidcIssuer(http, `${idp.url}/t1`).discover()).rejects.toThrow(
      `the OIDC discovery document ${idp.url}/.well-known/oauth-authorization-server/t1 names issuer "${idp.url}/other"`,
    )
  })
})
