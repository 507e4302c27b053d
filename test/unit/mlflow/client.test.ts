import { MlflowClient, apiUrl, encodePath, filterLiteral } from '../../../src/mlflow/client.js'
import { NO_AUTH, TokenAuth, bearerAuth } from '../../../src/mlflow/auth.js'
import { UndiciTransport } from '../../../src/util/http.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { FAST_RETRY, fakeServer, json } from './fake-server.js'

describe('URL building', () => {
  test.each([
    [
      'http://m:5000',
      '/api/2.0/mlflow/model-versions/get',
      { name: 'wine classifier', version: '3' },
      'http://m:5000/api/2.0/mlflow/model-versions/get?name=wine%20classifier&version=3',
    ],
    ['http://m:5000/', '/p', { name: 'a.b.c' }, 'http://m:5000/p?name=a.b.c'],
    [
      'https://h/mlflow/',
      '/p',
      { name: 'Modèle Vin/ü&=?#' },
      'https://h/mlflow/p?name=Mod%C3%A8le%20Vin%2F%C3%BC%26%3D%3F%23',
    ],
    [
      'http://m',
      '/p',
      { name: 'x', stages: ['Staging', 'Production'] },
      'http://m/p?name=x&stages=Staging&stages=Production',
    ],
    ['http://m', '/p', { name: 'x', page_token: undefined, max_results: 50 }, 'http://m/p?name=x&max_results=50'],
    ['http://m', '/p', { name: '模型' }, 'http://m/p?name=%E6%A8%A1%E5%9E%8B'],
  ])('apiUrl(%s, %s, %j)', (base, path, query, expected) => expect(apiUrl(base, path, query)).toBe(expected))

  test.each([
    ['1/abc/artifacts/model/MLmodel', '1/abc/artifacts/model/MLmodel'],
    ['/1//a b/c#d?.pkl', '1/a%20b/c%23d%3F.pkl'],
    ['x/ünï/é.txt', 'x/%C3%BCn%C3%AF/%C3%A9.txt'],
  ])('encodePath(%s)', (path, expected) => expect(encodePath(path)).toBe(expected))

  test.each([
    ['wine', "'wine'"],
    ["o'brien", '"o\'brien"'],
  ])('filterLiteral(%s)', (v, expected) => expect(filterLiteral(v)).toBe(expected))
})

describe('MlflowClient against a loopback server', () => {
  const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
  afterAll(() => http.close())
  const client = (url: string, auth = NO_AUTH) =>
    new MlflowClient({ trackingUri: url, http, auth, log: new MemoryLogger() })

  test('sends the encoded name and parses the version', async () => {
    const server = await fakeServer((_req, res) => json(res, 200, { model_version: { name: 'a b', version: '1' } }))
    try {
      const mv = await client(server.url, bearerAuth('T', 'mlflow-token')).getModelVersion('a b', '1')
      expect(mv.version).toBe('1')
      expect(server.requests[0]!.url).toBe('/api/2.0/mlflow/model-versions/get?name=a%20b&version=1')
      expect(server.requests[0]!.headers.authorization).toBe('Bearer T')
    } finally {
      await server.close()
    }
  })

  test('a gateway login page (200 HTML) is reported as not MLflow JSON', async () => {
    const server = await fakeServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<html><title>Sign in</title></html>')
    })
    try {
      await expect(client(server.url).getRegisteredModel('x')).rejects.toThrow(
        `MLflow at ${server.url} answered GET /api/2.0/mlflow/registered-models/get with text/html instead of MLflow JSON; is tracking-uri the MLflow server?`,
      )
    } finally {
      await server.close()
    }
  })

  test('a 401 HTML page from a gateway names the credential, never the value', async () => {
    const server = await fakeServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'text/html' })
      res.end(
        '<html><head><title>401 Authorization Required</title></head><body><center><h1>401</h1></center><hr>nginx</body></html>',
      )
    })
    try {
      const err = await client(server.url, bearerAuth('SECRET-VALUE', 'mlflow-token'))
        .getRegisteredModel('x')
        .catch((e) => e)
      expect(err.message).toBe(
        `MLflow at ${server.url} rejected the credentials (401; an HTML page instead of MLflow JSON: "401 Authorization Required"); sent bearer token from mlflow-token: check that they are right and current`,
      )
      expect(err.message).not.toContain('SECRET-VALUE')
    } finally {
      await server.close()
    }
  })

  test('a 401 with a token provider fetches a fresh token and retries once', async () => {
    const server = await fakeServer((req, res) =>
      req.headers.authorization === 'Bearer t2'
        ? json(res, 200, { registered_model: { name: 'x' } })
        : json(res, 401, { detail: 'expired' }),
    )
    let n = 0
    const auth = new TokenAuth(
      'test tokens',
      async () => ({ value: `t${++n}`, obtainedAt: 0, expiresAt: 1e12 }),
      () => 0,
    )
    try {
      expect((await client(server.url, auth).getRegisteredModel('x')).name).toBe('x')
      expect(server.requests.map((r) => r.headers.authorization)).toEqual(['Bearer t1', 'Bearer t2'])
    } finally {
      await server.close()
    }
  })

  test('MLflow error JSON is one line with the code and message', async () => {
    const server = await fakeServer((_req, res) =>
      json(res, 404, {
        error_code: 'RESOURCE_DOES_NOT_EXIST',
        message: 'Registered Model with name=x not found\nTraceback...',
      }),
    )
    try {
      const err = await client(server.url)
        .getRegisteredModel('x')
        .catch((e) => e)
      expect(err.message).toMatch(
        /^MLflow at http:\S+: RESOURCE_DOES_NOT_EXIST: Registered Model with name=x not found \(HTTP 404, GET /,
      )
      expect(err.status).toBe(404)
      expect(err.code).toBe('RESOURCE_DOES_NOT_EXIST')
    } finally {
      await server.close()
    }
  })

  test('registry calls go to the registry URI, run calls to the tracking URI', async () => {
    const reg = await fakeServer((_req, res) => json(res, 200, { artifact_uri: 'mlflow-artifacts:/1/x' }))
    const trk = await fakeServer((_req, res) => json(res, 200, { run: { info: { run_id: 'r', experiment_id: '1' } } }))
    try {
      const c = new MlflowClient({
        trackingUri: trk.url,
        registryUri: reg.url,
        http,
        auth: NO_AUTH,
        log: new MemoryLogger(),
      })
      await c.getDownloadUri('m', '1')
      await c.getRun('r')
      expect([reg.requests.length, trk.requests.length]).toEqual([1, 1])
    } finally {
      await reg.close()
      await trk.close()
    }
  })

  test('an unreachable server names tracking-uri', async () => {
    await expect(client('http://127.0.0.1:1').getRegisteredModel('x')).rejects.toThrow(
      'cannot reach MLflow at http://127.0.0.1:1: connection refused (is the server up, is the port right?); check tracking-uri',
    )
  })
})
