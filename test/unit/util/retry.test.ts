import { backoffDelay, parseRetryAfter, retrying, type Attempt, type RetryPolicy } from '../../../src/util/retry.js'

const policy: RetryPolicy = { retries: 3, baseDelayMs: 100, maxDelayMs: 1000, budgetMs: 5000 }

test.each([
  // attempt, random, expected
  [1, 0, 50],
  [1, 1, 100],
  [2, 0.5, 150],
  [4, 1, 800],
  [5, 1, 1000], // capped at maxDelay
  [9, 0, 500],
])('backoff of attempt %i with jitter %s: %i ms', (attempt, random, expected) =>
  expect(backoffDelay(policy, attempt, () => random)).toBe(expected),
)

test.each([
  ['3', 3000],
  [' 0 ', 0],
  ['Wed, 02 Dec 2026 12:00:05 GMT', 5000],
  ['Wed, 02 Dec 2026 11:00:00 GMT', 0], // in the past: now
  ['soon', undefined],
  [undefined, undefined],
])('Retry-After %j is %s ms', (value, expected) =>
  expect(parseRetryAfter(value, Date.parse('Wed, 02 Dec 2026 12:00:00 GMT'))).toBe(expected),
)

/** A fake clock whose sleeps only record and advance time. */
function clock() {
  let t = 0
  const sleeps: number[] = []
  return {
    sleeps,
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms)
      t += ms
    },
  }
}

describe('retrying', () => {
  test('retries until done, telling onRetry why and releasing each failed attempt', async () => {
    const c = clock()
    const released: number[] = []
    const told: string[] = []
    const result = await retrying(
      policy,
      async (n): Promise<Attempt<string>> =>
        n < 3
          ? { retry: `HTTP 503 #${n}`, giveUp: () => 'gave up', release: async () => void released.push(n) }
          : { done: `ok after ${n}` },
      { ...c, onRetry: (why, n) => told.push(`${n}: ${why}`) },
    )
    expect(result).toBe('ok after 3')
    expect(released).toEqual([1, 2])
    expect(told).toEqual(['1: HTTP 503 #1', '2: HTTP 503 #2'])
    expect(c.sleeps).toHaveLength(2)
  })

  test('gives up after the retry count: the attempt decides what that means', async () => {
    const c = clock()
    let attempts = 0
    const result = await retrying(
      policy,
      async (n): Promise<Attempt<string>> => {
        attempts = n
        return { retry: 'HTTP 502', giveUp: () => `last answer of attempt ${n}` }
      },
      c,
    )
    expect(result).toBe('last answer of attempt 4')
    expect(attempts).toBe(1 + policy.retries)
  })

  test('a give-up may throw; a throw from an attempt ends it at once', async () => {
    const c = clock()
    await expect(
      retrying(
        { ...policy, retries: 1 },
        async () => ({
          retry: 'ECONNRESET',
          giveUp: () => {
            throw new Error('still reset')
          },
        }),
        c,
      ),
    ).rejects.toThrow('still reset')
    let calls = 0
    await expect(
      retrying(
        policy,
        async () => {
          calls++
          throw new Error('permanent')
        },
        c,
      ),
    ).rejects.toThrow('permanent')
    expect(calls).toBe(1)
  })

  test('Retry-After is honoured up to the cap, and the budget bounds the total', async () => {
    const c = clock()
    const outcome = { retry: 'HTTP 429', retryAfter: '3', giveUp: () => 'over budget' }
    const result = await retrying({ ...policy, retries: 10, maxDelayMs: 2000 }, async () => outcome, c)
    expect(result).toBe('over budget')
    expect(c.sleeps).toEqual([2000, 2000]) // a third wait would pass the 5 s budget
  })

  test('an abort during the wait rejects with its reason, and no attempt follows', async () => {
    const ctl = new AbortController()
    let calls = 0
    const p = retrying(
      { ...policy, baseDelayMs: 60_000, maxDelayMs: 60_000, budgetMs: 600_000 },
      async () => {
        calls++
        return { retry: 'HTTP 503', giveUp: () => 'x' }
      },
      { signal: ctl.signal },
    )
    setTimeout(() => ctl.abort(new Error('cancelled by SIGINT')), 20)
    await expect(p).rejects.toThrow('cancelled by SIGINT')
    expect(calls).toBe(1)
  })
})
