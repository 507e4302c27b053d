import { UndiciTransport } from '../../../src/util/http.js'
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { CredentialSource, RegistryCredential } from '../../../src/image/docker-config.js'
import { parseImageRef } from '../../../src/image/reference.js'
import {
  MANIFEST_ACCEPT,
  MEDIA,
  parseWwwAuthenticate,
  pickPlatform,
  RegistryClient,
  registryErrorSummary,
  scopeRefusal,
} from '../../../src/image/registry.js'
import { MemoryLogger } from '../../support/memory-logger.js'

describe('parseWwwAuthenticate', () => {
  test.each([
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
      [
        {
          scheme: 'Bearer',
          params: {
            realm: 'https://auth.docker.io/token',
            service: 'registry.docker.io',
            scope: 'repository:library/nginx:pull',
          },
        },
      ],
    ],
    [
      'Basic realm="https://1.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
      [
        {
          scheme: 'Basic',
          params: { realm: 'https://1.dkr.ecr.us-east-1.amazonaws.com/', service: 'ecr.amazonaws.com' },
        },
      ],
    ],
    ['Basic realm="rig-registry"', [{ scheme: 'Basic', params: { realm: 'rig-registry' } }]],
    [
      'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull",error="insufficient_scope"',
      [
        {
          scheme: 'Bearer',
          params: {
            realm: 'https://ghcr.io/token',
            service: 'ghcr.io',
            scope: 'repository:user/image:pull',
            error: 'insufficient_scope',
          },
        },
      ],
    ],
    [
      'bearer REALM=https://x/token, service=svc',
      [{ scheme: 'bearer', params: { realm: 'https://x/token', service: 'svc' } }],
    ],
    [
      'Bearer realm="a \\"quoted\\" realm", scope="repository:a:pull,push"',
      [{ scheme: 'Bearer', params: { realm: 'a "quoted" realm', scope: 'repository:a:pull,push' } }],
    ],
    [
      'Basic realm="b", Bearer realm="t",service="s"',
      [
        { scheme: 'Basic', params: { realm: 'b' } },
        { scheme: 'Bearer', params: { realm: 't', service: 's' } },
      ],
    ],
    ['', []],
    [undefined, []],
  ])('%s', (header, expected) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected)
  })
})

test('pickPlatform skips attestation manifests', () => {
  const index = {
    manifests: [
      {
        digest: 'att',
        platform: { os: 'unknown', architecture: 'unknown' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
      },
      { digest: 'arm', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { digest: 'amd', platform: { os: 'linux', architecture: 'amd64' } },
    ],
  }
  expect(pickPlatform(index, 'linux/amd64')?.digest).toBe('amd')
  expect(pickPlatform(index, 'linux/arm64/v8')?.digest).toBe('arm')
  expect(pickPlatform(index, 'linux/s390x')?.digest).toBe('arm')
  expect(pickPlatform({ manifests: [index.manifests[0]!] }, 'linux/amd64')).toBeUndefined()
})

test.each([
  [
    '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}',
    'MANIFEST_UNKNOWN: manifest unknown',
  ],
  ['<html>\n<body>nope</body></html>', '<html> <body>nope</body></html>'],
  ['', '(empty body)'],
])('registryErrorSummary(%j)', (body, summary) => {
  expect(registryErrorSummary(body)).toBe(summary)
})

describe('scopeRefusal', () => {
  const tried = 'tried user "alice" from auths["r.example"] in /cfg/config.json'
  const bearer = (params: Record<string, string>) => ({
    scheme: 'Bearer',
    params: { realm: 'https://r/token', ...params },
  })
  test.each([
    [
      'distribution: insufficient_scope with the scope it needs',
      'repository:other/wine:pull',
      bearer({ scope: 'repository:other/wine:pull', error: 'insufficient_scope' }),
      `registry r.example refused repository:other/wine:pull (insufficient_scope): the token does not grant pull on other/wine; ${tried}: use a credential with pull access to other/wine`,
    ],
    [
      'a push: both actions named',
      'repository:other/wine:pull,push',
      bearer({ scope: 'repository:other/wine:pull,push', error: 'insufficient_scope' }),
      `registry r.example refused repository:other/wine:pull,push (insufficient_scope): the token does not grant pull and push on other/wine; ${tried}: use a credential with pull and push access to other/wine`,
    ],
    [
      'several scopes in the challenge: the repository’s',
      'repository:other/wine:push',
      bearer({ scope: 'registry:catalog:* repository:other/wine:push', error: 'insufficient_scope' }),
      `registry r.example refused repository:other/wine:push (insufficient_scope): the token does not grant push on other/wine; ${tried}: use a credential with push access to other/wine`,
    ],
    [
      'no scope in the challenge: the one asked for',
      'repository:other/wine:pull',
      bearer({ error: 'insufficient_scope' }),
      `registry r.example refused repository:other/wine:pull (insufficient_scope): the token does not grant pull on other/wine; ${tried}: use a credential with pull access to other/wine`,
    ],
    [
      'invalid_token is not a scope problem',
      'repository:other/wine:pull',
      bearer({ error: 'invalid_token' }),
      undefined,
    ],
    ['no error', 'repository:other/wine:pull', bearer({}), undefined],
    ['Basic', 'repository:other/wine:pull', { scheme: 'Basic', params: { error: 'insufficient_scope' } }, undefined],
    ['no challenge', 'repository:other/wine:pull', undefined, undefined],
  ])('%s', (_name, requested, challenge, expected) => {
    expect(scopeRefusal({ registry: 'r.example', repository: 'other/wine', requested, challenge, tried })).toBe(
      expected,
    )
  })
})

// ----- a loopback registry with programmable answers -----

type Handler = (req: IncomingMessage, res: ServerResponse, base: string) => void
const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`

async function serve(handler: Handler): Promise<{ host: string; base: string; server: Server; hits: string[] }> {
  const hits: string[] = []
  let base = ''
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`)
    handler(req, res, base)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  base = `http://127.0.0.1:${port}`
  return { host: `127.0.0.1:${port}`, base, server, hits }
}

const LABELS = { 'mlflow-k8s-deploy.identity': 'abc', 'org.opencontainers.image.title': 'wine' }
const CONFIG = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: LABELS } })
const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: MEDIA.ociManifest,
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(CONFIG), size: CONFIG.length },
  layers: [],
  annotations: { 'org.opencontainers.image.created': '2026-01-01' },
})
const ATTESTATION = JSON.stringify({
  schemaVersion: 2,
  mediaType: MEDIA.ociManifest,
  config: { digest: 'sha256:' + '0'.repeat(64) },
  layers: [],
})
const INDEX = JSON.stringify({
  schemaVersion: 2,
  mediaType: MEDIA.ociIndex,
  manifests: [
    {
      mediaType: MEDIA.ociManifest,
      digest: sha(ATTESTATION),
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    },
    { mediaType: MEDIA.ociManifest, digest: sha(MANIFEST), platform: { os: 'linux', architecture: 'amd64' } },
  ],
})

/** Serves `wine:v1` as an OCI index, `wine:single` as a Docker manifest, by digest too. */
function content(req: IncomingMessage, res: ServerResponse, opts: { omitDigest?: boolean } = {}): boolean {
  const url = req.url ?? ''
  const send = (type: string, body: string) => {
    const headers: Record<string, string> = { 'content-type': type, 'content-length': String(Buffer.byteLength(body)) }
    if (!opts.omitDigest) headers['docker-content-digest'] = sha(body)
    res.writeHead(200, headers)
    res.end(req.method === 'HEAD' ? undefined : body)
  }
  if (url === '/v2/wine/manifests/v1' || url === `/v2/wine/manifests/${sha(INDEX)}`) send(MEDIA.ociIndex, INDEX)
  else if (url === `/v2/wine/manifests/${sha(MANIFEST)}` || url === '/v2/wine/manifests/single')
    send(MEDIA.ociManifest, MANIFEST)
  else if (url === `/v2/wine/blobs/${sha(CONFIG)}`) send('application/octet-stream', CONFIG)
  else if (url.startsWith('/v2/')) {
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }))
  } else return false
  return true
}

const creds = (c?: Partial<RegistryCredential>): CredentialSource & { asked: number } => {
  const source = {
    asked: 0,
    async get() {
      source.asked++
      return c
        ? { username: 'robot', secret: 'pa55', kind: 'basic' as const, source: 'auths["x"] in /cfg/config.json', ...c }
        : undefined
    },
  }
  return source
}
const client = (credentials: CredentialSource) =>
  new RegistryClient({ http: new UndiciTransport(), credentials, log: new MemoryLogger() })

describe('RegistryClient against loopback fakes', () => {
  const servers: Server[] = []
  afterAll(() => servers.forEach((s) => s.close()))
  const start = async (h: Handler) => {
    const s = await serve(h)
    servers.push(s.server)
    return s
  }

  test('anonymous open registry: index → platform manifest → config labels, with every Accept type', async () => {
    let accept = ''
    const s = await start((req, res) => {
      if (req.url?.includes('/manifests/')) accept = String(req.headers.accept)
      content(req, res)
    })
    const img = await client(creds()).inspect(parseImageRef(`${s.host}/wine:v1`))
    expect(accept).toBe(MANIFEST_ACCEPT)
    expect(img).toEqual({
      digest: sha(INDEX),
      mediaType: MEDIA.ociIndex,
      labels: { 'org.opencontainers.image.created': '2026-01-01', ...LABELS },
      platformDigest: sha(MANIFEST),
      // The attestation manifest (unknown/unknown) is no platform.
      platforms: ['linux/amd64'],
    })
    expect(await client(creds()).headDigest(parseImageRef(`${s.host}/wine:v1`))).toBe(sha(INDEX))
  })

  test('not found is a miss, for a tag and for a repository', async () => {
    const s = await start((req, res) => content(req, res))
    expect(await client(creds()).inspect(parseImageRef(`${s.host}/wine:nope`))).toBeUndefined()
    expect(await client(creds()).inspect(parseImageRef(`${s.host}/other:v1`))).toBeUndefined()
    expect(await client(creds()).headDigest(parseImageRef(`${s.host}/wine:nope`))).toBeUndefined()
  })

  test('a HEAD without Docker-Content-Digest: the digest is computed from the GET body', async () => {
    const s = await start((req, res) => content(req, res, { omitDigest: true }))
    expect(await client(creds()).headDigest(parseImageRef(`${s.host}/wine:single`))).toBe(sha(MANIFEST))
  })

  test('Bearer flow: token from the realm with Basic credentials, cached per scope', async () => {
    const s = await start((req, res, base) => {
      if (req.url?.startsWith('/token')) {
        const q = new URL(req.url, base).searchParams
        const ok = req.headers.authorization === `Basic ${Buffer.from('robot:pa55').toString('base64')}`
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' })
        res.end(ok ? JSON.stringify({ token: `tok-${q.get('service')}-${q.get('scope')}`, expires_in: 300 }) : '{}')
        return
      }
      if (req.headers.authorization !== 'Bearer tok-fake-repository:wine:pull') {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="${base}/token",service="fake",scope="repository:wine:pull"`,
        })
        res.end()
        return
      }
      content(req, res)
    })
    const c = client(creds({}))
    const img = await c.inspect(parseImageRef(`${s.host}/wine:v1`))
    expect(img?.labels['mlflow-k8s-deploy.identity']).toBe('abc')
    await c.headDigest(parseImageRef(`${s.host}/wine:v1`))
    // One challenge, one token, then every request carries it.
    expect(s.hits.filter((h) => h.startsWith('GET /token'))).toHaveLength(1)
    expect(s.hits.filter((h) => h.endsWith(' -'))).toHaveLength(1)
  })

  test('Basic directly (ECR style): credentials on the registry request', async () => {
    const s = await start((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('AWS:pa55').toString('base64')}`) {
        res.writeHead(401, {
          'www-authenticate': 'Basic realm="https://1.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
        })
        res.end()
        return
      }
      content(req, res)
    })
    const img = await client(creds({ username: 'AWS' })).inspect(parseImageRef(`${s.host}/wine:single`))
    expect(img?.digest).toBe(sha(MANIFEST))
  })

  test('no credentials for a registry that wants them: says none were found', async () => {
    const s = await start((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' })
      res.end()
    })
    await expect(client(creds()).inspect(parseImageRef(`${s.host}/wine:v1`))).rejects.toThrow(
      new RegExp(
        `registry ${s.host} requires authentication for wine; no credentials for ${s.host} were found in the Docker config`,
      ),
    )
  })

  test('wrong credentials: names the registry and the credential tried, never the secret', async () => {
    const s = await start((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"', 'content-type': 'application/json' })
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }))
    })
    const e2 = await client(creds({}))
      .inspect(parseImageRef(`${s.host}/wine:v1`))
      .catch((e: Error) => e)
    expect((e2 as Error).message).toMatch(
      new RegExp(
        `registry ${s.host} refused access to wine \\(HTTP 401: UNAUTHORIZED: authentication required\\); tried user "robot" from auths\\["x"\\] in /cfg/config.json`,
      ),
    )
    expect((e2 as Error).message).not.toContain('pa55')
  })

  test('403 from the registry after a token', async () => {
    const s = await start((req, res, base) => {
      if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ access_token: 't' }))
        return
      }
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${base}/token",service="s"` })
        res.end()
        return
      }
      res.writeHead(403, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }))
    })
    await expect(
      client(creds({ kind: 'identity-token', username: undefined })).inspect(parseImageRef(`${s.host}/wine:v1`)),
    ).rejects.toThrow(
      /refused access to wine \(HTTP 403: DENIED: requested access to the resource is denied\) with a freshly issued token from http:\S+\/token; tried an identity token from auths/,
    )
  })

  test('a token short of the scope: one line naming the repository and the scope', async () => {
    const s = await start((req, res, base) => {
      if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ token: 't' }))
        return
      }
      const challenge = `Bearer realm="${base}/token",service="s",scope="repository:other/wine:pull"`
      res.writeHead(401, {
        'www-authenticate': req.headers.authorization ? `${challenge},error="insufficient_scope"` : challenge,
        'content-type': 'application/json',
      })
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }))
    })
    for (const call of [
      (c: RegistryClient) => c.inspect(parseImageRef(`${s.host}/other/wine:v1`)),
      (c: RegistryClient) => c.headDigest(parseImageRef(`${s.host}/other/wine:v1`)),
    ]) {
      const err = (await call(client(creds({}))).catch((e: Error) => e)) as Error
      expect(err.message).toBe(
        `registry ${s.host} refused repository:other/wine:pull (insufficient_scope): the token does not grant pull on other/wine; tried user "robot" from auths["x"] in /cfg/config.json: use a credential with pull access to other/wine`,
      )
    }
  })

  describe('checkPushAccess', () => {
    /** A Bearer registry whose upload POST answers `status`; records the token scopes asked for. */
    const uploads = (status: number) =>
      start((req, res, base) => {
        const url = new URL(req.url ?? '/', base)
        if (url.pathname === '/token') {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ token: `tok ${url.searchParams.get('scope')}` }))
          return
        }
        if (!req.headers.authorization) {
          res.writeHead(401, { 'www-authenticate': `Bearer realm="${base}/token",service="s"` })
          res.end()
          return
        }
        if (req.method === 'POST' && url.pathname === '/v2/wine/blobs/uploads/') {
          res.writeHead(status, status === 202 ? { location: '/v2/wine/blobs/uploads/u1?_state=x' } : {})
          res.end()
          return
        }
        if (req.method === 'DELETE') {
          res.writeHead(204)
          res.end()
          return
        }
        res.writeHead(404)
        res.end()
      })

    test('202: a pull,push token, the upload started and cancelled', async () => {
      const s = await uploads(202)
      expect(await client(creds({})).checkPushAccess(parseImageRef(`${s.host}/wine`))).toBe(true)
      expect(s.hits).toEqual([
        'POST /v2/wine/blobs/uploads/ -',
        `GET /token?service=s&scope=repository%3Awine%3Apull%2Cpush ${'Basic ' + Buffer.from('robot:pa55').toString('base64')}`,
        'POST /v2/wine/blobs/uploads/ Bearer tok repository:wine:pull,push',
        'DELETE /v2/wine/blobs/uploads/u1?_state=x Bearer tok repository:wine:pull,push',
      ])
    })

    test.each([404, 405, 500])('%i to the upload: not checked, no error', async (status) => {
      const s = await uploads(status)
      const log = new MemoryLogger()
      const c = new RegistryClient({ http: new UndiciTransport(), credentials: creds({}), log })
      expect(await c.checkPushAccess(parseImageRef(`${s.host}/wine`))).toBe(false)
      expect(log.lines.join('\n')).toContain(
        `push access to wine not checked before the build (starting a blob upload answered HTTP ${status})`,
      )
    })
  })

  test('the token service refusing the credential is an error naming it', async () => {
    const s = await start((req, res, base) => {
      if (req.url?.startsWith('/token')) {
        res.writeHead(401, { 'content-type': 'application/json' })
        res.end('{"details":"incorrect username or password"}')
        return
      }
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${base}/token",service="s"` })
      res.end()
    })
    await expect(client(creds({})).inspect(parseImageRef(`${s.host}/wine:v1`))).rejects.toThrow(
      /token service of registry 127.0.0.1:\d+ .* refused repository:wine:pull \(HTTP 401\); tried user "robot"/,
    )
  })

  test.each([
    ['a login page (200 text/html)', 200],
    ['an error page (502 text/html)', 502],
    ['a web server’s 404 page (not a cache miss)', 404],
  ])('a registry answering %s says it is HTML', async (_n, status) => {
    const s = await start((_req, res) => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' })
      res.end('<!DOCTYPE html><html><body>Sign in</body></html>')
    })
    await expect(client(creds()).inspect(parseImageRef(`${s.host}/wine:v1`))).rejects.toThrow(
      /with an HTML page \(HTTP \d+\), not the registry API/,
    )
    await expect(client(creds()).headDigest(parseImageRef(`${s.host}/wine:v1`))).rejects.toThrow(/HTML page/)
  })

  test('a 401 with an unknown challenge scheme', async () => {
    const s = await start((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Negotiate' })
      res.end()
    })
    await expect(client(creds()).inspect(parseImageRef(`${s.host}/wine:v1`))).rejects.toThrow(
      /HTTP 401 without a Bearer or Basic challenge/,
    )
  })

  test('an unreachable registry (a closed port) is a clear error', async () => {
    const s = await serve(() => {})
    const host = s.host
    await new Promise((r) => s.server.close(r))
    await expect(client(creds()).inspect(parseImageRef(`${host}/wine:v1`))).rejects.toThrow(
      new RegExp(`cannot reach registry ${host} \\(http://${host}\\): ECONNREFUSED`),
    )
  })

  test('a blob behind a redirect is fetched from the other host without our Authorization', async () => {
    const storage = await start((req, res) => {
      storage.hits.push(`auth=${req.headers.authorization ?? 'none'}`)
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.end(CONFIG)
    })
    const s = await start((req, res) => {
      if (req.url === `/v2/wine/blobs/${sha(CONFIG)}`) {
        res.writeHead(307, { location: `${storage.base}/blob?sig=1` })
        res.end()
        return
      }
      content(req, res)
    })
    const img = await client(creds()).inspect(parseImageRef(`${s.host}/wine:single`))
    expect(img?.labels['mlflow-k8s-deploy.identity']).toBe('abc')
    expect(storage.hits).toContain('auth=none')
  })
})
