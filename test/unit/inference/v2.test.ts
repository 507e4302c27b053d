import { parseSignature } from '../../../src/mlflow/mlmodel.js'
// The V2 client against a loopback fake server that behaves like a serving stack just after
// Ready: 404 / 400 for a moment, then answers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { runSmokeTest } from '../../../src/inference/smoke.js'
import { V2Client, V2Error } from '../../../src/inference/v2.js'
import { systemClock } from '../../../src/util/clock.js'
import { MemoryLogger } from '../../support/memory-logger.js'

type Handler = (req: IncomingMessage, body: string) => [number, unknown?]

let server: Server
let base: string
let handler: Handler
const seen: { method: string; url: string; host: string | undefined }[] = []

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, host: req.headers.host })
      const [status, payload] = handler(req, body)
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(payload === undefined ? '' : JSON.stringify(payload))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise((r) => server.close(r)))
beforeEach(() => (seen.length = 0))

const client = (hostHeader?: string) => new V2Client({ baseUrl: base, hostHeader, log: new MemoryLogger() })

/** Answers `first` for the first `n` calls of a path, then `then`. */
function flaky(n: number, first: [number, unknown?], then: Handler): Handler {
  const counts = new Map<string, number>()
  return (req, body) => {
    const c = (counts.get(req.url!) ?? 0) + 1
    counts.set(req.url!, c)
    return c <= n ? first : then(req, body)
  }
}

const answer = { model_name: 'wine', outputs: [{ name: 'output-1', shape: [1], datatype: 'INT64', data: [1] }] }
const request = { inputs: [{ name: 'alcohol', shape: [1], datatype: 'FP64', data: [13.2] }] }

test('404 then 200: ready after retries, Host header sent', async () => {
  handler = flaky(3, [404, { detail: 'Not Found' }], () => [200])
  const c = client('wine.models.example.com')
  const r = await c.waitReady('wine', { budgetMs: 10_000 })
  await c.close()
  expect(r.attempts).toBe(8) // 4 for the server, 4 for the model
  expect(seen.map((s) => s.url)).toEqual([
    ...Array(4).fill('/v2/health/ready'),
    ...Array(4).fill('/v2/models/wine/ready'),
  ])
  expect(new Set(seen.map((s) => s.host))).toEqual(new Set(['wine.models.example.com']))
})

test('infer: 503 is retried, the answer and its latency returned', async () => {
  let sent: unknown
  handler = flaky(1, [503], (_req, body) => ((sent = JSON.parse(body)), [200, answer]))
  const c = client()
  const r = await c.infer('wine', request, { budgetMs: 10_000 })
  await c.close()
  expect(sent).toEqual(request)
  expect(r.response).toEqual(answer)
  expect(r.attempts).toBe(2)
  expect(r.latencyMs).toBeGreaterThan(0)
})

test('infer: a 400 is a real answer, not retried, and its error is quoted', async () => {
  handler = () => [400, { error: 'Failed to enforce schema of data: missing inputs malic_acid' }]
  const c = client()
  const err = await c.infer('wine', request, { budgetMs: 10_000 }).catch((e) => e)
  await c.close()
  expect(err).toBeInstanceOf(V2Error)
  expect(err.message).toBe(
    `${base}/v2/models/wine/infer answered HTTP 400: Failed to enforce schema of data: missing inputs malic_acid`,
  )
  expect(seen).toHaveLength(1)
})

test('the retry budget bounds the wait and names the last answer', async () => {
  handler = () => [404, { detail: 'Not Found' }]
  const c = client()
  const started = Date.now()
  const err = await c.waitReady('wine', { budgetMs: 1_000 }).catch((e) => e)
  await c.close()
  expect(Date.now() - started).toBeLessThan(2_000)
  expect(err.message).toMatch(
    /\/v2\/health\/ready did not succeed within 1 s \(\d+ attempts\); last answer: HTTP 404: Not Found/,
  )
})

test('connection refused is retried until the budget, then reported', async () => {
  const c = new V2Client({ baseUrl: 'http://127.0.0.1:9', log: new MemoryLogger() })
  const err = await c.waitReady('wine', { budgetMs: 500 }).catch((e) => e)
  await c.close()
  expect(err.message).toMatch(/last answer: ECONNREFUSED/)
})

test('smoke test: wrong output shape fails with what the signature promised', async () => {
  handler = (req) =>
    req.url!.endsWith('/infer')
      ? [200, { outputs: [{ name: 'output-1', shape: [1, 3], datatype: 'FP64', data: [0.1, 0.2, 0.7] }] }]
      : [200]
  const c = client()
  const err = await runSmokeTest(
    c,
    {
      name: 'wine',
      signature: parseSignature({
        inputs: [{ type: 'double', name: 'alcohol' }],
        outputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'int64', shape: [-1] } }],
      }),
    },
    { budgetMs: 5_000, clock: systemClock, log: new MemoryLogger() },
  ).catch((e) => e)
  await c.close()
  expect(err.message).toBe(
    'smoke test of /v2/models/wine/infer: output output-1 has shape [1,3], the signature promises [-1]',
  )
})
