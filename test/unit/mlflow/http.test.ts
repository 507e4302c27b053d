import { UndiciTransport, HttpConnectionError } from '../../../src/util/http.js'
import { isIdempotent, isRetryableStatus, retryDelay } from '../../../src/util/retry.js'
import { FAST_RETRY, fakeServer, json } from './fake-server.js'

const policy = { retries: 3, baseDelayMs: 100, maxDelayMs: 1000, budgetMs: 5000 }

describe('retry decisions', () => {
  test.each([
    [408, true],
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [504, true],
    [400, false],
    [401, false],
    [404, false],
    [501, false],
  ])('status %i retryable: %s', (status, expected) => expect(isRetryableStatus(status)).toBe(expected))

  test.each([
    [{ method: 'GET' as const }, true],
    [{ method: 'DELETE' as const }, true],
    [{ method: 'POST' as const }, false],
    [{ method: 'POST' as const, idempotent: true }, true],
    [{ method: 'GET' as const, idempotent: false }, false],
  ])('idempotent %j: %s', (req, expected) => expect(isIdempotent(req)).toBe(expected))

  test.each([
    // attempt, elapsed, retry-after, random, expected
    [1, 0, undefined, 0, 50],
    [1, 0, undefined, 1, 100],
    [2, 0, undefined, 1, 200],
    [3, 0, undefined, 1, 400],
    [4, 0, undefined, 1, undefined], // past the retry count
    [2, 4900, undefined, 1, undefined], // past the time budget
    [1, 0, '2', 0, 1000], // Retry-After honoured, capped at maxDelay
    [1, 0, '0', 1, 100],
  ])('attempt %i after %i ms, Retry-After %s, jitter %s: waits %s', (attempt, elapsed, after, random, expected) => {
    expect(retryDelay(policy, attempt, elapsed, after, () => random)).toBe(expected)
  })
})

describe('UndiciTransport against a loopback server', () => {
  test('429 then 200: retried after a backoff, answer returned', async () => {
    let n = 0
    const server = await fakeServer((_req, res) =>
      ++n < 3 ? json(res, 429, { error_code: 'REQUEST_LIMIT_EXCEEDED' }) : json(res, 200, { ok: true }),
    )
    const sleeps: number[] = []
    const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async (ms) => void sleeps.push(ms) })
    try {
      const res = await http.request({ method: 'GET', url: `${server.url}/x` })
      expect(res.status).toBe(200)
      expect(JSON.parse(await res.text())).toEqual({ ok: true })
      expect(sleeps).toHaveLength(2)
    } finally {
      await http.close()
      await server.close()
    }
  })

  test('a POST is not repeated on 503 (not idempotent)', async () => {
    const server = await fakeServer((_req, res) => json(res, 503, {}))
    const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
    try {
      const res = await http.request({ method: 'POST', url: server.url, body: '{}' })
      expect(res.status).toBe(503)
      expect(server.requests).toHaveLength(1)
    } finally {
      await http.close()
      await server.close()
    }
  })

  test('gives up after the retry count and returns the last answer', async () => {
    const server = await fakeServer((_req, res) => json(res, 502, {}))
    const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
    try {
      expect((await http.request({ method: 'GET', url: server.url })).status).toBe(502)
      expect(server.requests).toHaveLength(1 + FAST_RETRY.retries)
    } finally {
      await http.close()
      await server.close()
    }
  })

  test('a connection reset before the answer is retried', async () => {
    let n = 0
    const server = await fakeServer((req, res) => void (++n === 1 ? req.socket.destroy() : json(res, 200, { n })))
    const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
    try {
      const res = await http.request({ method: 'GET', url: server.url })
      expect(JSON.parse(await res.text())).toEqual({ n: 2 })
    } finally {
      await http.close()
      await server.close()
    }
  })

  test('connection refused is not retried and carries its code', async () => {
    const server = await fakeServer(() => undefined)
    const url = server.url
    await server.close()
    const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
    const err = await http.request({ method: 'GET', url }).catch((e) => e)
    expect(err).toBeInstanceOf(HttpConnectionError)
    expect(err.code).toBe('ECONNREFUSED')
    await http.close()
  })

  test('an aborted request rejects with the abort reason', async () => {
    const server = await fakeServer(() => undefined) // never answers
    const http = new UndiciTransport({ retry: FAST_RETRY })
    const ctl = new AbortController()
    setTimeout(() => ctl.abort(new Error('stop')), 50)
    await expect(http.request({ method: 'GET', url: server.url, signal: ctl.signal })).rejects.toThrow('stop')
    await http.close()
    await server.close()
  })
})
