// TLS against a loopback HTTPS server with a throwaway CA: untrusted → a message naming
// mlflow-ca-cert / mlflow-insecure-tls; the CA given → works; insecure → works; http:// to it →
// says to use https://.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NO_AUTH } from '../../../src/mlflow/auth.js'
import { MlflowClient } from '../../../src/mlflow/client.js'
import { UndiciTransport, type TransportOptions } from '../../../src/util/http.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { FAST_RETRY } from './fake-server.js'

const dir = mkdtempSync(join(tmpdir(), 'tls-'))
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
let server: Server
let port: number

beforeAll(async () => {
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  )
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'srv.key', '-out', 'srv.csr')
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  ssl(
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
    '-out',
    'srv.pem',
  )
  server = createServer(
    { key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.pem')) },
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ registered_model: { name: 'm' } }))
    },
  )
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  port = (server.address() as AddressInfo).port
}, 30_000)
afterAll(() => new Promise<void>((r) => server.close(() => r())))

async function get(url: string, opts: TransportOptions) {
  const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined, ...opts })
  try {
    const client = new MlflowClient({ trackingUri: url, http, auth: NO_AUTH, log: new MemoryLogger() })
    return (await client.getRegisteredModel('m')).name
  } finally {
    await http.close()
  }
}

test('an untrusted certificate names mlflow-ca-cert and mlflow-insecure-tls', async () => {
  await expect(get(`https://127.0.0.1:${port}`, {})).rejects.toThrow(
    new RegExp(
      `^TLS verification of MLflow at https://127.0.0.1:${port} failed \\(\\w+: .*\\): give its CA with mlflow-ca-cert, or set mlflow-insecure-tls: true \\(not recommended\\)$`,
    ),
  )
})

test('the CA file makes it trusted', async () => {
  expect(await get(`https://127.0.0.1:${port}`, { caCertPath: join(dir, 'ca.pem') })).toBe('m')
})

test('insecure TLS skips verification', async () => {
  expect(await get(`https://127.0.0.1:${port}`, { insecureTls: true })).toBe('m')
})

test('http:// to a TLS server says to use https://', async () => {
  const err = await get(`http://127.0.0.1:${port}`, {}).catch((e) => e)
  expect(err.message).toMatch(/use https:\/\/ in tracking-uri/)
})
