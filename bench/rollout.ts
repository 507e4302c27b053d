// Rollout timings on the real Knative Serving and Envoy of the rig (issue 13, "Benchmarks"):
// how long after the kubelet reports a failing container the wait says so, how long a rollback
// takes until every request is answered by the previous revision again, and how long after the
// controller writes Ready the wait resolves. The action's code (ServingCluster, deployer identity)
// does the rollouts; an independent observer (admin identity, its own watches of the Service and
// of the pods, opened before each apply) timestamps what the cluster did, and a prober sends
// bounded requests back to back through the ingress with the service's Host and reads which model
// answered (the fixture's v1 and v2 predict differently for the probe row).
// Per trial, one fresh Service in namespace deploy (bench-rollout-…, deleted after):
//   create v1 → update to an unpullable image (rolled back) → update to v2, Ready, then a smoke
//   test that fails (the signature lies): rolled back while v2 serves → update to a container
//   that exits at once (crash loop, rolled back).
// Then once: Knative's own verdict on an unpullable image, watched for a bounded minute.
// Usage: node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/rollout.ts [trials]
// (VERBOSE=1 prints the action's log lines with their times.)
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { ServingCluster, RolloutError, type Applied } from '../src/k8s/index.js'
import { smokeTestDeployment } from '../src/pipeline/smoke-test.js'
import { KubeConfigTransport, type ServingKind } from '../src/k8s/kube.js'
import { loadKubeconfig } from '../src/k8s/kubeconfig.js'
import { condition, knativeReadiness, servingStatus, type KubeObject } from '../src/k8s/readiness.js'
import { progressDeadlineS } from '../src/pipeline/check-cluster.js'
import type { Logger } from '../src/util/logger.js'
import { call, ingressAddress, probeRow, pyfuncPrediction } from '../test/integration/action/run-action.js'
import { fixtureModel, modelImage, wineManifest, withLyingSignature } from '../test/integration/k8s/fixtures.js'
import { rigEnv } from '../test/integration/rig-env.js'

const trials = Number(process.argv[2] ?? 5)
const NS = 'deploy'
const prefix = `bench-rollout-${Date.now().toString(36).slice(-4)}`
const VERBOSE = process.env['VERBOSE'] === '1'
// What the action sets with its default timeout (10m): the forward share, 480 s.
const DEADLINE_S = progressDeadlineS({ wait: true, timeoutMs: 600_000 } as Parameters<typeof progressDeadlineS>[0])!
const REVISION: ServingKind = {
  group: 'serving.knative.dev',
  version: 'v1',
  kind: 'Revision',
  plural: 'revisions',
  product: 'Knative Serving',
}

const now = () => performance.now()
/** The observer's copy of an event may arrive a moment after the action's own: wait for it, bounded. */
async function until<T>(f: () => T | undefined, timeoutMs = 3_000): Promise<T> {
  const end = now() + timeoutMs
  for (let v = f(); ; v = f()) {
    if (v !== undefined) return v
    if (now() > end) throw new Error(`the observer did not see it within ${timeoutMs} ms`)
    await sleep(20)
  }
}
/** A wall-clock timestamp (kubelet, API server) on the performance.now() scale. */
const fromWall = (iso: string) => Date.parse(iso) - performance.timeOrigin
const uptime = () =>
  execFileSync('uptime', { encoding: 'utf8' })
    .trim()
    .replace(/.*load/, 'load')

/** The action's log, each line timed. */
class TimedLogger implements Logger {
  readonly lines: { t: number; text: string }[] = []
  private add(text: string) {
    this.lines.push({ t: now(), text })
    if (VERBOSE) console.log(`  [${(now() / 1000).toFixed(3)}] ${text.slice(0, 300)}`)
  }
  info(m: string) {
    this.add(m)
  }
  warning(m: string) {
    this.add(`warning: ${m}`)
  }
  debug(m: string) {
    this.add(`debug: ${m}`)
  }
  async group<T>(_title: string, fn: () => Promise<T>): Promise<T> {
    return fn()
  }
  first(pattern: RegExp, after: number): number | undefined {
    return this.lines.find((l) => l.t >= after && pattern.test(l.text))?.t
  }
}

type Seen = { t: number; obj: KubeObject }

/** Its own watches (admin identity) of one Service and of its pods: every state, timestamped on arrival. */
class Observer {
  readonly service: Seen[] = []
  readonly pods: Seen[] = []
  private readonly stop = new AbortController()
  private readonly loops: Promise<void>[] = []

  constructor(private readonly transport: KubeConfigTransport) {}

  async start(name: string): Promise<this> {
    await Promise.all([
      this.follow(`/apis/serving.knative.dev/v1/namespaces/${NS}/services`, `metadata.name=${name}`, '', this.service),
      this.follow(`/api/v1/namespaces/${NS}/pods`, '', `serving.knative.dev/service=${name}`, this.pods),
    ])
    await sleep(300) // the watch requests are out before anything is applied
    return this
  }

  private async follow(path: string, fieldSelector: string, labelSelector: string, into: Seen[]) {
    const signal = this.stop.signal
    const query = { ...(fieldSelector ? { fieldSelector } : {}), ...(labelSelector ? { labelSelector } : {}) }
    const list = async () => {
      const res = await this.transport.request({ method: 'GET', path, query, signal })
      if (res.status !== 200) throw new Error(`observer: GET ${path}: HTTP ${res.status}`)
      const body = res.body as { items?: KubeObject[]; metadata?: { resourceVersion?: string } }
      for (const obj of body.items ?? []) into.push({ t: now(), obj })
      return body.metadata?.resourceVersion ?? ''
    }
    let rv = await list()
    const loop = async () => {
      while (!signal.aborted) {
        try {
          await this.transport.watch(
            path,
            { ...query, resourceVersion: rv, allowWatchBookmarks: 'true' },
            (type, raw) => {
              const obj = raw as KubeObject & { code?: number }
              if (type === 'ERROR') {
                if (obj.code === 410) rv = ''
                return
              }
              rv = obj.metadata?.resourceVersion ?? rv
              if (type !== 'BOOKMARK') into.push({ t: now(), obj })
            },
            signal,
          )
        } catch (err) {
          if (signal.aborted) return
          if ((err as { statusCode?: number }).statusCode === 410) rv = ''
          else await sleep(100)
        }
        if (!rv && !signal.aborted) rv = await list().catch(() => '')
      }
    }
    this.loops.push(loop())
  }

  /** When the Service first showed what the wait waits for (Ready=True at the applied generation…). */
  ready(applied: Applied, after: number): number | undefined {
    return this.service.find((s) => s.t >= after && knativeReadiness(s.obj, applied.expectation).state === 'ready')?.t
  }

  /** The rollback's apply landing (generation past the failed update's), and its status showing the switch. */
  rollback(failedGeneration: number, revision: string, after: number): { applied?: number; switched?: number } {
    const later = this.service.filter((s) => s.t >= after)
    const applied = later.find((s) => (s.obj.metadata?.generation ?? 0) > failedGeneration)?.t
    const switched = later.find((s) => {
      const observed = s.obj.status?.['observedGeneration']
      const traffic = servingStatus(s.obj).traffic.filter((t) => (t.percent ?? 0) > 0)
      return (
        typeof observed === 'number' &&
        observed > failedGeneration &&
        traffic.length > 0 &&
        traffic.every((t) => t.revision === revision && !t.latestRevision)
      )
    })?.t
    return { applied, switched }
  }

  /** The first pod state of a revision whose serving container passes `test`, and the container then. */
  firstPod(
    revision: string,
    test: (c: ContainerStatus) => boolean,
  ): { t: number; pod: string; c: ContainerStatus } | undefined {
    for (const s of this.pods) {
      if (s.obj.metadata?.labels?.['serving.knative.dev/revision'] !== revision) continue
      const list = (s.obj.status?.['containerStatuses'] ?? []) as ContainerStatus[]
      const c = list.find((x) => x.name === 'mlserver')
      if (c && test(c)) return { t: s.t, pod: s.obj.metadata?.name ?? '', c }
    }
    return undefined
  }

  /** A revision's serving container's states as they changed: "1200 ErrImagePull, 2210 ImagePullBackOff…". */
  states(revision: string, from: number): string {
    const changes: string[] = []
    let last = ''
    for (const s of this.pods) {
      if (s.obj.metadata?.labels?.['serving.knative.dev/revision'] !== revision) continue
      const c = ((s.obj.status?.['containerStatuses'] ?? []) as ContainerStatus[]).find((x) => x.name === 'mlserver')
      const state = c?.state?.waiting?.reason ?? (c?.state?.terminated ? 'terminated' : c ? 'running' : 'none')
      if (state !== last) changes.push(`${Math.round(s.t - from)} ${state}`)
      last = state
    }
    return changes.join(', ')
  }

  async close() {
    this.stop.abort()
    await Promise.all(this.loops)
  }
}

interface ContainerStatus {
  name?: string
  restartCount?: number
  state?: { waiting?: { reason?: string }; terminated?: { finishedAt?: string } }
  lastState?: { terminated?: { finishedAt?: string } }
}
const waiting = (reason: string) => (c: ContainerStatus) => c.state?.waiting?.reason === reason
const exited = (c: ContainerStatus) => Boolean(c.state?.terminated ?? c.lastState?.terminated)

/** Bounded requests back to back through the ingress; which model answered each. */
class Prober {
  readonly answers: { start: number; end: number; who: string }[] = []
  private running = true
  private readonly loop: Promise<void>

  constructor(url: string, model: string) {
    const body = {
      inputs: Object.entries(probeRow()).map(([n, v]) => ({ name: n, shape: [1], datatype: 'FP64', data: [v] })),
    }
    const v1 = JSON.stringify(pyfuncPrediction('1'))
    const v2 = JSON.stringify(pyfuncPrediction('2'))
    this.loop = (async () => {
      while (this.running) {
        const start = now()
        let who: string
        try {
          const res = await call(`${url}/v2/models/${model}/infer`, { method: 'POST', body, timeoutMs: 2_000 })
          const data =
            res.status === 200
              ? JSON.stringify((JSON.parse(res.text) as { outputs: { data: unknown[] }[] }).outputs[0]?.data[0])
              : ''
          who = data === v1 ? 'v1' : data === v2 ? 'v2' : `HTTP ${res.status}`
        } catch (err) {
          who = (err as Error).name
          await sleep(50)
        }
        this.answers.push({ start, end: now(), who })
      }
    })()
  }

  between(from: number, to: number) {
    return this.answers.filter((a) => a.start >= from && a.end <= to)
  }

  /** From `from`: when the answers became v1 for good (the end of the first answer of the last all-v1 run). */
  allV1From(from: number, to: number): number | undefined {
    const window = this.between(from, to)
    let i = window.length
    while (i > 0 && window[i - 1]!.who === 'v1') i--
    return i < window.length ? window[i]!.end : undefined
  }

  async waitFor(who: string, count: number, timeoutMs: number) {
    const until = now() + timeoutMs
    for (;;) {
      const last = this.answers.slice(-count)
      if (last.length === count && last.every((a) => a.who === who)) return
      if (now() > until)
        throw new Error(`prober: no ${count} answers from ${who} in ${timeoutMs} ms: ${JSON.stringify(last)}`)
      await sleep(100)
    }
  }

  async stop() {
    this.running = false
    await this.loop
  }
}

const log = new TimedLogger()
const connect = (who: 'ADMIN' | 'DEPLOYER') => {
  const source = { kubeconfig: { path: rigEnv(`KUBECONFIG_${who}`) }, kubeContext: undefined }
  return {
    cluster: ServingCluster.connect(source, log),
    transport: new KubeConfigTransport(loadKubeconfig(source).config),
  }
}
const deployer = connect('DEPLOYER').cluster
// Timed, not changed: the wait reads the events (for the failure message) right after its verdict.
const eventReads: { start: number; end: number }[] = []
const readEvents = deployer.kube.events.bind(deployer.kube)
deployer.kube.events = async (...args) => {
  const start = now()
  try {
    return await readEvents(...args)
  } finally {
    eventReads.push({ start, end: now() })
  }
}
const { cluster: admin, transport: adminTransport } = connect('ADMIN')
const [v2model, img1, img2] = await Promise.all([fixtureModel('2'), modelImage('1'), modelImage('2')])
const lying = withLyingSignature(v2model)
const missingImage = () => `${rigEnv('REGISTRY')}/bench-rollout-no-such-image@sha256:${randomBytes(32).toString('hex')}`

function manifest(name: string, image: string, version: string, crash = false): KubeObject {
  const m = wineManifest('knative', name, { image, version }, { namespace: NS })
  if (crash) {
    const spec = (m.spec!['template'] as { spec: { containers: Record<string, unknown>[] } }).spec
    spec.containers[0]!['command'] = ['sh', '-c', 'echo bench: exiting on purpose >&2; exit 3']
  }
  return m
}

// As the action applies: with its progress deadline, and staging after a parked revision.
const apply = (m: KubeObject) => deployer.apply(m, { progressDeadlineS: DEADLINE_S, stage: true })
const WAIT = { timeoutMs: 300_000, rollbackMs: () => 60_000 }

async function failingUpdate(m: KubeObject) {
  const t0 = now()
  const applied = await apply(m)
  const err = await deployer.waitReady(applied, WAIT).then(
    () => {
      throw new Error('the broken update became ready')
    },
    (e: unknown) => e,
  )
  const rejected = now()
  if (!(err instanceof RolloutError) || err.outcome !== 'rolled-back') throw err
  return { t0, applied, err, rejected, logged: log.first(/^warning: .*: failed: /, t0)! }
}

interface Trial {
  readyCreate: number
  readyUpdate: number
  pull: {
    fromErrImagePull: number
    /** Undefined when the action failed (and rolled back) before the kubelet backed off. */
    fromBackOff?: number
    errToBackOff?: number
    kubeletLag?: number
    verdictFromErrImagePull: number
    eventsMs: number
    /** The serving container's waiting reasons as the observer saw them change, ms after the apply. */
    states: string
  }
  crash: { fromExit: number; fromCrashLoop?: number; reason: string; requests: Record<string, number> }
  rollbackFailedWait: { applyToSwitched: number; requests: number; notV1: number }
  rollbackAfterReady: {
    toAllV1: number
    failToApply: number
    applyToAllV1: number
    applyToSwitched: number
    requests: number
    answers: Record<string, number>
    v2BeforeFailure: number
  }
  load: string
}

/** The rollback's apply and its status switch to `revision`, as the observer saw them. */
function switched(observer: Observer, failed: Applied, revision: string, after: number) {
  return until(() => {
    const r = observer.rollback(failed.expectation.generation, revision, after)
    return r.applied !== undefined && r.switched !== undefined
      ? { applied: r.applied, switched: r.switched }
      : undefined
  })
}

const count = (answers: { who: string }[]) =>
  answers.reduce<Record<string, number>>((acc, a) => ({ ...acc, [a.who]: (acc[a.who] ?? 0) + 1 }), {})

async function kubeletPullEvent(pod: string): Promise<number | undefined> {
  const res = await adminTransport.request({
    method: 'GET',
    path: `/api/v1/namespaces/${NS}/events`,
    query: { fieldSelector: `involvedObject.name=${pod}` },
  })
  const items = ((res.body as { items?: Record<string, unknown>[] }).items ?? []).filter(
    (e) => e['reason'] === 'Failed' && /ErrImagePull|Failed to pull/.test(String(e['message'])),
  )
  const times = items.map((e) => fromWall(String(e['firstTimestamp'] ?? e['eventTime']))).filter(Number.isFinite)
  return times.length ? Math.min(...times) : undefined
}

async function trial(i: number): Promise<Trial> {
  const name = `${prefix}-${i}`
  const load = uptime()
  const observer = await new Observer(adminTransport).start(name)
  let prober: Prober | undefined
  try {
    // Ready noticed, fresh service.
    const created = await apply(manifest(name, img1, '1'))
    const d1 = await deployer.waitReady(created, WAIT)
    const resolved1 = now()
    const readyCreate = resolved1 - (await until(() => observer.ready(created, 0)))
    const v1rev = d1.revision!
    prober = new Prober(d1.url!, name)
    await prober.waitFor('v1', 3, 60_000)

    // An unpullable image: failure noticed, rolled back by a traffic switch.
    const pull = await failingUpdate(manifest(name, missingImage(), '3'))
    const failedPull = pull.err.found.failedRevision!
    const errPull = observer.firstPod(failedPull, waiting('ErrImagePull'))
    const backOff = observer.firstPod(failedPull, waiting('ImagePullBackOff'))
    // The action may fail (and roll back) on the first ErrImagePull, before any back-off.
    if (!errPull) throw new Error(`no pull error seen on ${failedPull}: ${pull.err.message}`)
    const kubelet = await kubeletPullEvent(errPull.pod)
    // The wait reads the events right after its verdict, before it reports the failure.
    const verdict = eventReads.find((r) => r.start >= pull.t0)!
    const rb1 = await switched(observer, pull.applied, v1rev, pull.t0)
    await sleep(1_000)
    const during = prober.between(pull.t0, now())

    // A good update (v2 serves), then a failed smoke test: the rollback moves traffic back to v1.
    const t2 = now()
    const a2 = await apply(manifest(name, img2, '2'))
    const d2 = await deployer.waitReady(a2, WAIT)
    const resolved2 = now()
    const readyUpdate = resolved2 - (await until(() => observer.ready(a2, t2)))
    await prober.waitFor('v2', 1, 30_000)
    const smoke = await smokeTestDeployment(
      { cluster: deployer, log },
      d2,
      { signature: lying.signature, example: lying.example },
      { ...WAIT, timeoutMs: 60_000, ingress: { address: ingressAddress() } },
    ).then(
      () => {
        throw new Error('the lying smoke test passed')
      },
      (e: unknown) => e,
    )
    if (!(smoke instanceof RolloutError) || smoke.outcome !== 'rolled-back') throw smoke
    const failedAt = log.first(/^warning: smoke test of /, t2)!
    await sleep(3_000)
    const allV1 = prober.allV1From(t2, now())
    const rb2 = await switched(observer, a2, v1rev, t2)
    const afterFailure = prober.between(failedAt, now())

    // A container that exits at once: a crash loop.
    const crash = await failingUpdate(manifest(name, img1, '4', true))
    const failedCrash = crash.err.found.failedRevision!
    const firstExit = observer.firstPod(failedCrash, exited)
    const crashLoop = observer.firstPod(failedCrash, waiting('CrashLoopBackOff'))
    if (!firstExit) throw new Error(`no exit seen on ${failedCrash}: ${crash.err.message}`)
    await sleep(1_000)
    const duringCrash = count(prober.between(crash.t0, now()))

    const result: Trial = {
      readyCreate,
      readyUpdate,
      pull: {
        fromErrImagePull: pull.logged - errPull.t,
        fromBackOff: backOff ? pull.logged - backOff.t : undefined,
        errToBackOff: backOff ? backOff.t - errPull.t : undefined,
        kubeletLag: kubelet === undefined ? undefined : errPull.t - kubelet,
        verdictFromErrImagePull: verdict.start - errPull.t,
        eventsMs: verdict.end - verdict.start,
        states: observer.states(failedPull, pull.t0),
      },
      crash: {
        fromExit: crash.logged - firstExit.t,
        fromCrashLoop: crashLoop && crash.logged - crashLoop.t,
        reason: /failed: (\w+)/.exec(crash.err.message)?.[1] ?? '?',
        requests: duringCrash,
      },
      rollbackFailedWait: {
        applyToSwitched: rb1.switched - rb1.applied,
        requests: during.length,
        notV1: during.filter((a) => a.who !== 'v1').length,
      },
      rollbackAfterReady: {
        toAllV1: allV1! - failedAt,
        failToApply: rb2.applied - failedAt,
        applyToAllV1: allV1! - rb2.applied,
        applyToSwitched: rb2.switched - rb2.applied,
        requests: afterFailure.length,
        answers: count(afterFailure),
        v2BeforeFailure: prober.between(t2, failedAt).filter((a) => a.who === 'v2').length,
      },
      load: `${load} → ${uptime()}`,
    }
    console.log(
      `trial ${i}: ${JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))}`,
    )
    for (const e of [pull.err, smoke, crash.err]) console.log(`  ${e.message.replace(/\s+/g, ' ').slice(0, 400)}`)
    return result
  } finally {
    await prober?.stop()
    await observer.close()
    await admin.remove({ target: 'knative', namespace: NS, name }, { timeoutMs: 120_000, takeOver: true })
  }
}

/**
 * Knative alone: an unpullable image applied with no one watching the pods. Does the revision's
 * Ready (or the Service's) go False within `boundMs` of the first pull error? Expected: no, not
 * before the progress deadline.
 */
async function knativeAlone(boundMs: number) {
  const name = `${prefix}-kn`
  const observer = await new Observer(adminTransport).start(name)
  try {
    const created = await apply(manifest(name, img1, '1'))
    await deployer.waitReady(created, WAIT)
    const t0 = now()
    const { object } = await deployer.kube.apply(manifest(name, missingImage(), '3'))
    const generation = object.metadata?.generation ?? 0
    let revision: string | undefined
    let errAt: number | undefined
    const seen = new Set<string>()
    const until = now() + 120_000
    while (now() < until && (errAt === undefined || now() - errAt < boundMs)) {
      const svc = observer.service.at(-1)?.obj
      if (!revision && svc && svc.status?.['observedGeneration'] === generation) {
        revision = servingStatus(svc).latestCreatedRevision
      }
      if (revision) {
        errAt ??= observer.firstPod(revision, (c) =>
          /ErrImagePull|ImagePullBackOff/.test(c.state?.waiting?.reason ?? ''),
        )?.t
        const rev = await admin.kube.read(REVISION, NS, revision)
        const r = condition(rev, 'Ready')
        seen.add(`revision Ready=${r?.status}${r?.reason ? ` (${r.reason})` : ''}`)
        const s = condition(svc, 'Ready')
        seen.add(`Service Ready=${s?.status}${s?.reason ? ` (${s.reason})` : ''}`)
      }
      await sleep(1_000)
    }
    const deadline = (object.spec?.['template'] as KubeObject).metadata?.annotations?.[
      'serving.knative.dev/progress-deadline'
    ]
    return {
      watchedMs: errAt === undefined ? 0 : now() - errAt,
      applyToPullError: errAt === undefined ? undefined : errAt - t0,
      seen: [...seen],
      deadline: deadline ?? 'unset (Knative default 600s)',
    }
  } finally {
    await observer.close()
    await admin.remove({ target: 'knative', namespace: NS, name }, { timeoutMs: 120_000, takeOver: true })
  }
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const med = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
  const ms = (v: number) => (Math.abs(v) >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`)
  return `median ${ms(med)}, max ${ms(s.at(-1)!)} (${xs.map(ms).join(', ')})`
}

console.log(`${prefix}: ${trials} trials, progress deadline the action sets: ${DEADLINE_S} s; ${uptime()}`)
const results: Trial[] = []
for (let i = 0; i < trials; i++) results.push(await trial(i))
const alone = await knativeAlone(60_000)
const pick = (f: (t: Trial) => number | undefined) => results.map(f).filter((v): v is number => v !== undefined)
console.log(`
1. failure noticed (pod status → the wait logs the failure):
   unpullable image, from the first ErrImagePull:      ${stats(pick((t) => t.pull.fromErrImagePull))}
     … from the first ImagePullBackOff:                ${stats(pick((t) => t.pull.fromBackOff))}
     ErrImagePull → ImagePullBackOff (kubelet):        ${stats(pick((t) => t.pull.errToBackOff))}
     … from the first ErrImagePull to the wait's verdict: ${stats(pick((t) => t.pull.verdictFromErrImagePull))}
     the events read between the verdict and the log:  ${stats(pick((t) => t.pull.eventsMs))}
     status seen by the watch after the kubelet's event firstTimestamp (1 s resolution): ${stats(pick((t) => t.pull.kubeletLag))}
   crash loop, from the container's first exit:        ${stats(pick((t) => t.crash.fromExit))}
     … from the first CrashLoopBackOff:                ${stats(pick((t) => t.crash.fromCrashLoop))}
     reason reported: ${results.map((t) => t.crash.reason).join(', ')}
     answers during the crash-loop update and its rollback: ${results.map((t) => JSON.stringify(t.crash.requests)).join(', ')}
   Knative alone, unpullable image (apply → first pull error ${Math.round(alone.applyToPullError ?? -1)} ms), watched ${Math.round(alone.watchedMs / 1000)} s after it: ${alone.seen.join('; ')}; progress-deadline ${alone.deadline}
2. rollback:
   failed during the wait: rollback apply → status switched: ${stats(pick((t) => t.rollbackFailedWait.applyToSwitched))}
     requests during update + rollback: ${results.map((t) => `${t.rollbackFailedWait.requests - t.rollbackFailedWait.notV1}/${t.rollbackFailedWait.requests} v1`).join(', ')}
   failed smoke test while v2 served: failure → 100 % v1 answers: ${stats(pick((t) => t.rollbackAfterReady.toAllV1))}
     rollback apply → status switched:                 ${stats(pick((t) => t.rollbackAfterReady.applyToSwitched))}
     failure logged → rollback apply landed:           ${stats(pick((t) => t.rollbackAfterReady.failToApply))}
     rollback apply landed → 100 % v1 answers:         ${stats(pick((t) => t.rollbackAfterReady.applyToAllV1))}
     answers after the failure: ${results.map((t) => JSON.stringify(t.rollbackAfterReady.answers)).join(', ')}
     requests after the failure: ${results.map((t) => t.rollbackAfterReady.requests).join(', ')}; v2 answers before it: ${results.map((t) => t.rollbackAfterReady.v2BeforeFailure).join(', ')}
3. Ready noticed (observer's Ready event → waitReady resolved):
   fresh service: ${stats(pick((t) => t.readyCreate))}
   update:        ${stats(pick((t) => t.readyUpdate))}
load: ${results.map((t) => t.load).join(' | ')}`)
