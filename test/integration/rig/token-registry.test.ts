// The rig's Bearer-token registry (parts/token_registry.sh) with raw HTTP: what the real servers
// do, which the action's registry client relies on (docker-registry 2.8 `auth: token` and the
// distribution project's contrib/token-server).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { rigEnv } from '../rig-env.js'

const REG = () => rigEnv('REGISTRY_TOKEN')
const REALM = () => rigEnv('REGISTRY_TOKEN_REALM')
const SERVICE = () => rigEnv('REGISTRY_TOKEN_SERVICE')
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
const alice = () => basic(rigEnv('REGISTRY_TOKEN_USER'), rigEnv('REGISTRY_TOKEN_PASSWORD'))

async function token(scopes: string[], authorization = alice()): Promise<{ status: number; token?: string }> {
  const url = new URL(REALM())
  url.searchParams.set('service', SERVICE())
  for (const s of scopes) url.searchParams.append('scope', s)
  const res = await fetch(url, { headers: { authorization } })
  const body = (await res.json()) as { access_token?: string }
  return { status: res.status, token: body.access_token }
}

/** The `access` claim of a JWT the token server issued (read, not verified: the registry verifies). */
function access(jwt: string): { type: string; name: string; actions: string[] }[] {
  const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as {
    access?: { type: string; name: string; actions: string[] }[]
  }
  // Actions sorted: the server lists them in Go's map order.
  return (claims.access ?? []).map((a) => ({ ...a, actions: [...a.actions].sort() }))
}

test('/v2/ without a token: 401 with a Bearer challenge naming the realm and service', async () => {
  const res = await fetch(`http://${REG()}/v2/`)
  expect(res.status).toBe(401)
  expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${REALM()}",service="${SERVICE()}"`)
})

test('the token server grants the user its own namespace and silently leaves out the rest', async () => {
  const user = rigEnv('REGISTRY_TOKEN_USER')
  const got = await token([`repository:${user}/wine:pull,push`, 'repository:other/wine:pull'])
  // 200 even though other/wine was asked for: the token just lacks it.
  expect(got.status).toBe(200)
  expect(access(got.token!)).toEqual([{ type: 'repository', name: `${user}/wine`, actions: ['pull', 'push'] }])
  // The registry then answers 401 insufficient_scope, naming the scope it needed.
  const res = await fetch(`http://${REG()}/v2/other/wine/manifests/v1`, {
    headers: { authorization: `Bearer ${got.token}` },
  })
  expect(res.status).toBe(401)
  expect(res.headers.get('www-authenticate')).toBe(
    `Bearer realm="${REALM()}",service="${SERVICE()}",scope="repository:other/wine:pull",error="insufficient_scope"`,
  )
})

test('a wrong password: the token server answers 401 with its own Basic challenge', async () => {
  const res = await token(['repository:x/y:pull'], basic(rigEnv('REGISTRY_TOKEN_USER'), 'wrong'))
  expect(res.status).toBe(401)
})

test('the OAuth2 password grant (POST) is refused with 400; the refresh_token grant works', async () => {
  // contrib/token-server's htpasswd controller is no CredentialAuthenticator. BuildKit and
  // containerd POST the password grant first and fall back to GET only after 401, 404 or 405.
  const form = (fields: Record<string, string>) =>
    fetch(REALM(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ service: SERVICE(), client_id: 'rig-test', scope: 'repository:x/y:pull', ...fields }),
    })
  const password = await form({
    grant_type: 'password',
    username: rigEnv('REGISTRY_TOKEN_USER'),
    password: rigEnv('REGISTRY_TOKEN_PASSWORD'),
  })
  expect(password.status).toBe(400)
  expect(await password.text()).toContain('password grant type not supported')

  const url = new URL(REALM())
  url.searchParams.set('service', SERVICE())
  url.searchParams.set('offline_token', 'true')
  const offline = (await (await fetch(url, { headers: { authorization: alice() } })).json()) as {
    refresh_token?: string
  }
  const refreshed = await form({ grant_type: 'refresh_token', refresh_token: offline.refresh_token ?? '' })
  expect(refreshed.status).toBe(200)
  expect(((await refreshed.json()) as { access_token?: string }).access_token).toBeTruthy()
})

test('DOCKER_CONFIG_TOKEN logs the docker client in as the user', () => {
  const config = JSON.parse(readFileSync(join(rigEnv('DOCKER_CONFIG_TOKEN'), 'config.json'), 'utf8')) as {
    auths: Record<string, { auth: string }>
  }
  expect(config.auths[REG()]?.auth).toBe(alice().slice('Basic '.length))
})
