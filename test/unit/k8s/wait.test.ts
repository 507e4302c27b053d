import { KubeApiError, KubeUnreachableError, type WatchEventType } from '../../../src/k8s/kube.js'
import type { KubeObject } from '../../../src/k8s/readiness.js'
import { WaitError, waitFor, type ObjectStream, type Verdict } from '../../../src/k8s/wait.js'
import type { Clock } from '../../../src/util/clock.js'
import { MemoryLogger } from '../../support/memory-logger.js'

/** A clock whose time moves only when the test says so. */
class FakeClock implements Clock {
  t = 0
  private timers: { at: number; resolve: () => void }[] = []
  now = () => this.t
  sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const timer = { at: this.t + ms, resolve }
      this.timers.push(timer)
      signal?.addEventListener('abort', () => {
        this.timers = this.timers.filter((x) => x !== timer)
        reject(signal.reason)
      })
    })
  advance(ms: number) {
    this.t += ms
    const due = this.timers.filter((x) => x.at <= this.t)
    this.timers = this.timers.filter((x) => x.at > this.t)
    due.forEach((x) => x.resolve())
  }
}

const obj = (rv: string, ready: boolean): KubeObject => ({
  kind: 'Service',
  metadata: { name: 'wine', resourceVersion: rv },
  status: { ready },
})
const check = (o: KubeObject | undefined): Verdict =>
  !o
    ? { state: 'failed', reason: 'Deleted', message: 'gone' }
    : o.status?.['ready']
      ? { state: 'done' }
      : { state: 'pending', detail: `rv ${o.metadata?.resourceVersion}` }

type Script = (rv: string, emit: (type: WatchEventType, o: unknown) => void, signal: AbortSignal) => Promise<void>

/** A stream whose list answers come from `lists` and whose watches run `scripts` in order. */
function fakeStream(lists: KubeObject[], scripts: Script[]) {
  const calls = { lists: 0, watches: [] as string[] }
  const stream: ObjectStream = {
    async list() {
      const o = lists[Math.min(calls.lists++, lists.length - 1)]!
      return { object: o, resourceVersion: o.metadata!.resourceVersion! }
    },
    async watch(rv, onEvent, signal) {
      calls.watches.push(rv)
      const script = scripts.shift()
      if (!script) return hang(signal)
      return script(rv, onEvent, signal)
    },
  }
  return { stream, calls }
}

/** Never ends on its own: only the waiter's abort stops it (like an open watch). */
const hang = (signal: AbortSignal) =>
  new Promise<void>((_r, reject) => {
    if (signal.aborted) reject(signal.reason)
    signal.addEventListener('abort', () => reject(signal.reason))
  })

function options(clock: Clock, extra: Partial<Parameters<typeof waitFor>[2]> = {}) {
  return { timeoutMs: 60_000, clock, log: new MemoryLogger(), what: 'Service d/wine', ...extra }
}

describe('waitFor', () => {
  test('done at the list: no watch opened', async () => {
    const { stream, calls } = fakeStream([obj('5', true)], [])
    const r = await waitFor(stream, check, options(new FakeClock()))
    expect(r.watches).toBe(0)
    expect(calls.watches).toEqual([])
  })

  test('a watch event turns it ready; the watch is closed at once', async () => {
    let aborted = false
    const { stream, calls } = fakeStream(
      [obj('5', false)],
      [
        async (_rv, emit, signal) => {
          emit('MODIFIED', obj('6', false))
          emit('MODIFIED', obj('7', true))
          await hang(signal).catch((e) => {
            aborted = true
            throw e
          })
        },
      ],
    )
    const r = await waitFor(stream, check, options(new FakeClock()))
    expect(r.object?.metadata?.resourceVersion).toBe('7')
    expect(calls.watches).toEqual(['5'])
    expect(aborted).toBe(true)
  })

  test('a closed watch reconnects from the last resourceVersion seen; bookmarks count', async () => {
    const { stream, calls } = fakeStream(
      [obj('5', false)],
      [
        async (_rv, emit) => emit('MODIFIED', obj('8', false)),
        async (_rv, emit) => emit('BOOKMARK', { metadata: { resourceVersion: '12' } }),
        async (_rv, emit) => emit('MODIFIED', obj('13', true)),
      ],
    )
    const r = await waitFor(stream, check, options(new FakeClock()))
    expect(calls.watches).toEqual(['5', '8', '12'])
    expect(r).toMatchObject({ watches: 3, relists: 0 })
  })

  test('410 Gone as an ERROR event relists, then watches from the new list', async () => {
    const { stream, calls } = fakeStream(
      [obj('5', false), obj('40', false)],
      [
        async (_rv, emit) => emit('ERROR', { kind: 'Status', code: 410, reason: 'Expired' }),
        async (_rv, emit) => emit('MODIFIED', obj('41', true)),
      ],
    )
    const r = await waitFor(stream, check, options(new FakeClock()))
    expect(calls).toEqual({ lists: 2, watches: ['5', '40'] })
    expect(r.relists).toBe(1)
  })

  test('410 as the watch answer relists too', async () => {
    const { stream, calls } = fakeStream(
      [obj('5', false), obj('40', true)],
      [async () => Promise.reject(Object.assign(new Error('Gone'), { statusCode: 410 }))],
    )
    await waitFor(stream, check, options(new FakeClock()))
    expect(calls.lists).toBe(2)
  })

  test('a dropped connection is retried after a backoff', async () => {
    const clock = new FakeClock()
    const { stream, calls } = fakeStream(
      [obj('5', false)],
      [
        async () => Promise.reject(new KubeUnreachableError('ECONNRESET', 'reset')),
        async (_rv, emit) => emit('MODIFIED', obj('6', true)),
      ],
    )
    const done = waitFor(stream, check, options(clock))
    await new Promise((r) => setImmediate(r))
    expect(calls.watches).toEqual(['5'])
    clock.advance(500)
    await done
    expect(calls.watches).toEqual(['5', '5'])
  })

  test('a permanent error (RBAC) ends the wait with its message', async () => {
    const { stream } = fakeStream(
      [obj('5', false)],
      [async () => Promise.reject(new KubeApiError(403, 'Forbidden', 'RBAC forbids'))],
    )
    await expect(waitFor(stream, check, options(new FakeClock()))).rejects.toThrow('RBAC forbids')
  })

  test('a failed verdict gathers the evidence into the error', async () => {
    const { stream } = fakeStream([obj('5', false)], [async (_rv, emit) => emit('DELETED', obj('9', false))])
    const log = new MemoryLogger()
    const err = (await waitFor(
      stream,
      check,
      options(new FakeClock(), { log, diagnose: async () => ['event Warning X'] }),
    ).catch((e) => e)) as WaitError
    expect(err).toBeInstanceOf(WaitError)
    expect(err.message).toBe('Service d/wine: failed: Deleted: gone')
    expect(err.evidence).toEqual(['event Warning X'])
    expect(log.lines).toContain('event Warning X')
  })

  test('the timeout bounds the wait and names the last state', async () => {
    const clock = new FakeClock()
    const { stream } = fakeStream(
      [obj('5', false)],
      [async (_rv, emit, signal) => (emit('MODIFIED', obj('6', false)), hang(signal))],
    )
    const done = waitFor(
      stream,
      check,
      options(clock, { timeoutMs: 90_000, diagnose: async () => ['condition Ready=Unknown'] }),
    )
    await new Promise((r) => setImmediate(r))
    clock.advance(90_000)
    const err = (await done.catch((e) => e)) as WaitError
    expect(err.reason).toBe('Timeout')
    expect(err.message).toBe('Service d/wine: not done after 1 min 30 s; last state: rv 6')
    expect(err.evidence).toEqual(['condition Ready=Unknown'])
  })

  test('cancelling stops the wait with the caller reason', async () => {
    const controller = new AbortController()
    const { stream } = fakeStream([obj('5', false)], [async (_rv, _emit, signal) => hang(signal)])
    const done = waitFor(stream, check, options(new FakeClock(), { signal: controller.signal }))
    controller.abort(new Error('cancelled by the runner'))
    await expect(done).rejects.toThrow('cancelled by the runner')
  })
})
