// The rig's MLflow servers and identity providers, exercised over real HTTP (Node 24 fetch).
// Every server must be up: a missing fact or an unreachable server fails the test.
import { rigEnv } from '../rig-env.js'

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

function claims(jwt: string): Json {
  const part = jwt.split('.')[1]
  if (!part) throw new Error(`not a JWT: ${jwt.slice(0, 20)}…`)
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Json
}

function header(jwt: string): Json {
  return JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString('utf8')) as Json
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

async function getVersion(base: string, auth?: string, name = rigEnv('FIXTURE_MODEL'), version = '1') {
  const url = `${base}/api/2.0/mlflow/model-versions/get?name=${encodeURIComponent(name)}&version=${version}`
  return fetch(url, { headers: auth ? { Authorization: auth } : {} })
}

async function tokenEndpoint(): Promise<string> {
  const res = await fetch(`${rigEnv('OIDC_ISSUER')}/.well-known/openid-configuration`)
  expect(res.status).toBe(200)
  const doc = (await res.json()) as Json
  expect(doc.issuer).toBe(rigEnv('OIDC_ISSUER'))
  return doc.token_endpoint as string
}

async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  })
}

async function accessToken(form: Record<string, string>, headers: Record<string, string> = {}): Promise<string> {
  const res = await postForm(await tokenEndpoint(), form, headers)
  const body = (await res.json()) as Json
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${JSON.stringify(body)}`)
  expect(body.token_type).toBe('Bearer')
  return body.access_token as string
}

async function githubToken(audience?: string): Promise<string> {
  const url = `${rigEnv('GHA_ID_TOKEN_REQUEST_URL')}${audience ? `&audience=${encodeURIComponent(audience)}` : ''}`
  const res = await fetch(url, { headers: { Authorization: `Bearer ${rigEnv('GHA_ID_TOKEN_REQUEST_TOKEN')}` } })
  expect(res.status).toBe(200)
  return ((await res.json()) as Json).value as string
}

describe('plain MLflow', () => {
  const base = () => rigEnv('MLFLOW_URI')

  test('model-versions/get returns the fixture version 1 with a MLflow 3 source', async () => {
    const res = await getVersion(base())
    expect(res.status).toBe(200)
    const mv = ((await res.json()) as Json).model_version as Json
    expect(mv.name).toBe(rigEnv('FIXTURE_MODEL'))
    expect(mv.version).toBe('1')
    expect(mv.status).toBe('READY')
    expect(mv.current_stage).toBe('Staging')
    expect(mv.source).toMatch(/^models:\/m-[0-9a-f]+$/)
  })

  test('alias champion resolves to version 1; stage Production holds version 2', async () => {
    const model = encodeURIComponent(rigEnv('FIXTURE_MODEL'))
    const alias = await fetch(`${base()}/api/2.0/mlflow/registered-models/alias?name=${model}&alias=champion`)
    expect(alias.status).toBe(200)
    expect(((await alias.json()) as Json).model_version.version).toBe(rigEnv('FIXTURE_ALIAS_VERSION'))
    const latest = await fetch(
      `${base()}/api/2.0/mlflow/registered-models/get-latest-versions?name=${model}&stages=Production`,
    )
    expect(latest.status).toBe(200)
    const versions = ((await latest.json()) as Json).model_versions as Json[]
    expect(versions.map((v) => v.version)).toEqual([rigEnv('FIXTURE_PRODUCTION_VERSION')])
  })

  test('the runs:/ model is a run artifact directory with an MLmodel', async () => {
    const run = encodeURIComponent(rigEnv('FIXTURE_RUN_ID'))
    const path = encodeURIComponent(rigEnv('FIXTURE_RUN_MODEL_PATH'))
    const res = await fetch(`${base()}/api/2.0/mlflow/artifacts/list?run_id=${run}&path=${path}`)
    expect(res.status).toBe(200)
    const files = (((await res.json()) as Json).files as Json[]).map((f) => f.path)
    expect(files).toContain(`${rigEnv('FIXTURE_RUN_MODEL_PATH')}/MLmodel`)
  })

  test.each(['FIXTURE_MODEL_DOTTED', 'FIXTURE_MODEL_SPACE', 'FIXTURE_MODEL_UNICODE'])(
    'awkward name %s resolves',
    async (key) => {
      const res = await getVersion(base(), undefined, rigEnv(key), rigEnv('FIXTURE_ODD_MODEL_VERSION'))
      expect(res.status).toBe(200)
      expect(((await res.json()) as Json).model_version.name).toBe(rigEnv(key))
    },
  )
})

describe('basic-auth MLflow', () => {
  const base = () => rigEnv('MLFLOW_BASIC_URI')

  test('no credentials: 401, plain text and a Basic challenge', async () => {
    const res = await getVersion(base())
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="mlflow"/)
    const text = await res.text()
    expect(() => JSON.parse(text)).toThrow()
  })

  test("the reader's Basic credentials: 200", async () => {
    const res = await getVersion(
      base(),
      basic(rigEnv('MLFLOW_BASIC_READER_USER'), rigEnv('MLFLOW_BASIC_READER_PASSWORD')),
    )
    expect(res.status).toBe(200)
    expect(((await res.json()) as Json).model_version.version).toBe('1')
  })

  test('wrong password: 401', async () => {
    const res = await getVersion(base(), basic(rigEnv('MLFLOW_BASIC_READER_USER'), 'not-the-password'))
    expect(res.status).toBe(401)
  })

  test('the no-permission user: 403 on the fixture model, 200 on another', async () => {
    const auth = basic(rigEnv('MLFLOW_BASIC_NOPERM_USER'), rigEnv('MLFLOW_BASIC_NOPERM_PASSWORD'))
    const denied = await getVersion(base(), auth)
    expect(denied.status).toBe(403)
    expect(await denied.text()).toMatch(/Permission denied/)
    const other = await getVersion(base(), auth, rigEnv('FIXTURE_MODEL_DOTTED'))
    expect(other.status).toBe(200)
  })
})

describe('OIDC IdP and OIDC-protected MLflow', () => {
  const base = () => rigEnv('MLFLOW_OIDC_URI')

  test('client_credentials: a JWT access token (at+jwt, aud = MLflow, email, groups) MLflow accepts', async () => {
    const token = await accessToken(
      { grant_type: 'client_credentials', resource: rigEnv('OIDC_AUDIENCE') },
      { Authorization: basic(rigEnv('OIDC_CLIENT_ID'), rigEnv('OIDC_CLIENT_SECRET')) },
    )
    expect(header(token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt' })
    expect(claims(token)).toMatchObject({
      iss: rigEnv('OIDC_ISSUER'),
      aud: rigEnv('OIDC_AUDIENCE'),
      email: rigEnv('OIDC_CLIENT_EMAIL'),
      groups: expect.arrayContaining([expect.any(String)]),
    })
    const res = await getVersion(base(), `Bearer ${token}`)
    expect(res.status).toBe(200)
    expect(((await res.json()) as Json).model_version.version).toBe('1')
  })

  test('client secret in the body works too; a wrong secret is invalid_client', async () => {
    const token = await accessToken({
      grant_type: 'client_credentials',
      client_id: rigEnv('OIDC_CLIENT_ID'),
      client_secret: rigEnv('OIDC_CLIENT_SECRET'),
    })
    expect(claims(token).aud).toBe(rigEnv('OIDC_AUDIENCE'))
    const bad = await postForm(await tokenEndpoint(), {
      grant_type: 'client_credentials',
      client_id: rigEnv('OIDC_CLIENT_ID'),
      client_secret: 'wrong',
    })
    expect(bad.status).toBe(401)
    expect(((await bad.json()) as Json).error).toBe('invalid_client')
  })

  test('no token: 401 {"detail": ...}; a garbage bearer: 401', async () => {
    const res = await getVersion(base())
    expect(res.status).toBe(401)
    expect(((await res.json()) as Json).detail).toMatch(/Authentication required/)
    const garbage = await getVersion(base(), 'Bearer not.a.jwt')
    expect(garbage.status).toBe(401)
  })

  test('GitHub-style ID token endpoint: audience, default audience, claims, wrong request token', async () => {
    const token = await githubToken('some-audience')
    expect(header(token).alg).toBe('RS256')
    expect(claims(token)).toMatchObject({
      iss: rigEnv('GHA_OIDC_ISSUER'),
      aud: 'some-audience',
      sub: rigEnv('GHA_SUBJECT'),
      repository: rigEnv('GHA_REPOSITORY'),
      repository_owner: 'acme',
      ref: 'refs/heads/main',
    })
    expect(claims(token)).toHaveProperty('run_id')
    expect(claims(token)).toHaveProperty('actor')
    expect(claims(await githubToken()).aud).toBe('https://github.com/acme')
    const denied = await fetch(`${rigEnv('GHA_ID_TOKEN_REQUEST_URL')}&audience=x`, {
      headers: { Authorization: 'Bearer wrong' },
    })
    expect(denied.status).toBe(401)
    const discovery = await fetch(`${rigEnv('GHA_OIDC_ISSUER')}/.well-known/openid-configuration`)
    expect(((await discovery.json()) as Json).issuer).toBe(rigEnv('GHA_OIDC_ISSUER'))
  })

  test('RFC 8693 token exchange (no client auth): the result is accepted by MLflow', async () => {
    const token = await accessToken({
      grant_type: TOKEN_EXCHANGE,
      subject_token: await githubToken(rigEnv('GHA_EXCHANGE_AUDIENCE')),
      subject_token_type: JWT_TOKEN_TYPE,
      audience: rigEnv('OIDC_AUDIENCE'),
    })
    expect(claims(token)).toMatchObject({
      aud: rigEnv('OIDC_AUDIENCE'),
      email: rigEnv('OIDC_GITHUB_EMAIL'),
      sub: rigEnv('GHA_SUBJECT'),
    })
    expect((await getVersion(base(), `Bearer ${token}`)).status).toBe(200)
  })

  test('RFC 8693 token exchange: the response names issued_token_type; a wrong-audience subject is invalid_grant', async () => {
    const endpoint = await tokenEndpoint()
    const ok = await postForm(
      endpoint,
      {
        grant_type: TOKEN_EXCHANGE,
        subject_token: await githubToken(rigEnv('GHA_EXCHANGE_AUDIENCE')),
        subject_token_type: JWT_TOKEN_TYPE,
      },
      { Authorization: basic(rigEnv('OIDC_CLIENT_ID'), rigEnv('OIDC_CLIENT_SECRET')) },
    )
    expect(ok.status).toBe(200)
    expect(((await ok.json()) as Json).issued_token_type).toBe('urn:ietf:params:oauth:token-type:access_token')
    const bad = await postForm(endpoint, {
      grant_type: TOKEN_EXCHANGE,
      subject_token: await githubToken('https://github.com/acme'),
      subject_token_type: JWT_TOKEN_TYPE,
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as Json).error).toBe('invalid_grant')
  })

  test('RFC 7523 client assertion (federated client): the result is accepted by MLflow', async () => {
    const token = await accessToken({
      grant_type: 'client_credentials',
      client_id: rigEnv('OIDC_FEDERATED_CLIENT_ID'),
      client_assertion_type: JWT_BEARER_ASSERTION,
      client_assertion: await githubToken(rigEnv('GHA_EXCHANGE_AUDIENCE')),
    })
    expect(claims(token)).toMatchObject({ email: rigEnv('OIDC_GITHUB_EMAIL'), aud: rigEnv('OIDC_AUDIENCE') })
    expect((await getVersion(base(), `Bearer ${token}`)).status).toBe(200)
  })

  test('the federated client without a GitHub assertion is invalid_client', async () => {
    const res = await postForm(await tokenEndpoint(), {
      grant_type: 'client_credentials',
      client_id: rigEnv('OIDC_FEDERATED_CLIENT_ID'),
    })
    expect(res.status).toBe(401)
    expect(((await res.json()) as Json).error).toBe('invalid_client')
  })

  test('a raw GitHub token with audience = MLflow is accepted directly; another audience is not', async () => {
    expect((await getVersion(base(), `Bearer ${await githubToken(rigEnv('OIDC_AUDIENCE'))}`)).status).toBe(200)
    expect((await getVersion(base(), `Bearer ${await githubToken('https://github.com/acme')}`)).status).toBe(401)
  })
})
