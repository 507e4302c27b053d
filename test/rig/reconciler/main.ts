// The rig's test reconciler: watches Knative Services and KServe InferenceServices and behaves
// toward clients like the real controllers do (see test/rig/reconciler/README.md).
// Run: $NODE24 test/rig/reconciler/main.ts   (KUBECONFIG = an admin kubeconfig)
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import * as docker from './docker.ts'
import {
  kserveStatus,
  kserveTemplateHash,
  knativeStatus,
  knativeTemplateHash,
  hashOf,
  mergePatch,
  revisionName,
  revisionNumber,
  stableJson,
  withTransitionTimes,
  type Condition,
  type Json,
  type Obj,
  type RevisionView,
} from './status.ts'

const READY_TIMEOUT_MS = Number(process.env.RIG_RECONCILER_READY_TIMEOUT ?? 300) * 1000
const STATE_DIR = `${process.env.RIG_STATE ?? '/var/cache/mlflow-k8s-deploy-rig/state'}/reconciler`

type KindName = 'ksvc' | 'isvc'
// InferenceServices belong to the real KServe controller (parts/kserve.sh); the isvc code below
// is no longer reached and goes with the rest of this stand-in when Knative moves to its own.
const WATCHED = ['ksvc'] as const
const KINDS = {
  ksvc: { group: 'serving.knative.dev', version: 'v1', plural: 'services', kind: 'Service' },
  isvc: { group: 'serving.kserve.io', version: 'v1beta1', plural: 'inferenceservices', kind: 'InferenceService' },
} as const

/** What a revision runs: an image, MLServer on the host for a storageUri, or nothing (bad spec). */
type Plan =
  | {
      kind: 'image'
      image: string
      env: Record<string, string>
      command?: string[]
      args?: string[]
      readyPath: string
    }
  | { kind: 'mlserver'; modelName: string; modelUri: string; env: Record<string, string> }
  | { kind: 'invalid'; reason: string; message: string }

interface Revision extends RevisionView {
  hash: string
  plan: Plan
  handle?: docker.Handle
}
interface Tracked {
  key: string
  uid: string
  kind: KindName
  namespace: string
  name: string
  initialized: boolean
  hash?: string // template hash of the latest created revision
  nextNumber: number
  revisions: Revision[]
  latestReady?: string
  // KServe only
  childGeneration: number
  routingHash?: string
  latestRolledout?: string
  previousRolledout?: string
  invalid?: { reason: string; message: string }
  lastWritten?: Obj // the status we last wrote (we are its only writer)
}

const log = (...a: unknown[]) => console.log(new Date().toISOString(), ...a)
const kc = new KubeConfig()
kc.loadFromDefault()
const custom = kc.makeApiClient(CustomObjectsApi)
const core = kc.makeApiClient(CoreV1Api)
const tracked = new Map<string, Tracked>()
const informers = {} as Record<KindName, ReturnType<typeof makeInformer<KubernetesObject>>>

// --- state across restarts ------------------------------------------------------------------------
// What the real controllers keep in Revision objects, the rig keeps in a file: a restarted
// reconciler neither recreates revisions nor forgets failures. Running containers are adopted.
const STATE_FILE = `${STATE_DIR}/state.json`
type Saved = Omit<Tracked, 'revisions' | 'lastWritten' | 'initialized'> & {
  revisions: (Omit<Revision, 'handle'> & { handle?: docker.Handle })[]
}
let saved: Record<string, Saved> = {}
function loadState(): void {
  try {
    saved = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as Record<string, Saved>
  } catch {
    saved = {}
  }
}
function saveState(): void {
  const out: Record<string, Saved> = {}
  for (const t of tracked.values()) {
    const { lastWritten: _w, initialized: _i, ...rest } = t
    out[t.key] = {
      ...rest,
      revisions: t.revisions.map((r) => ({
        ...r,
        handle:
          r.handle?.kind === 'container' ? { kind: 'container', id: r.handle.id, ports: r.handle.ports } : undefined,
      })),
    }
  }
  mkdirSync(STATE_DIR, { recursive: true })
  writeFileSync(`${STATE_FILE}.tmp`, JSON.stringify(out))
  renameSync(`${STATE_FILE}.tmp`, STATE_FILE)
}

// --- work queue: one reconcile at a time per object, bursts coalesced ---------------------------
const pending = new Set<string>()
const chains = new Map<string, Promise<void>>()
function enqueue(key: string): void {
  if (pending.has(key)) return
  pending.add(key)
  const next = (chains.get(key) ?? Promise.resolve()).then(async () => {
    pending.delete(key)
    try {
      await reconcile(key)
    } catch (e) {
      log(
        `reconcile ${key} failed:`,
        String(e instanceof Error ? e.message : e)
          .split('\n')
          .slice(0, 3)
          .join(' '),
      )
      setTimeout(() => enqueue(key), 2000)
    }
  })
  chains.set(key, next)
}
const keyOf = (kind: KindName, ns: string, name: string) => `${ns}/${kind}/${name}`

// --- spec → plan ---------------------------------------------------------------------------------
function envOf(list: unknown): Record<string, string> {
  const env: Record<string, string> = {}
  for (const e of (list ?? []) as { name: string; value?: string }[]) if (e.value !== undefined) env[e.name] = e.value
  return env
}
function containerPlan(c: Obj | undefined): Plan {
  if (!c?.image) return { kind: 'invalid', reason: 'InvalidSpec', message: 'no container image in the spec' }
  const probe = ((c.readinessProbe as Obj | undefined)?.httpGet as Obj | undefined)?.path
  return {
    kind: 'image',
    image: String(c.image),
    env: envOf(c.env),
    command: c.command as string[] | undefined,
    args: c.args as string[] | undefined,
    readyPath: typeof probe === 'string' ? probe : '/v2/health/ready',
  }
}
function planFor(kind: KindName, obj: Obj): Plan {
  const spec = (obj.spec ?? {}) as Obj
  if (kind === 'ksvc') {
    const containers = (((spec.template as Obj | undefined)?.spec as Obj | undefined)?.containers ?? []) as Obj[]
    return containerPlan(containers.find((c) => c.ports) ?? containers[0])
  }
  const predictor = (spec.predictor ?? {}) as Obj
  if (Array.isArray(predictor.containers)) return containerPlan(predictor.containers[0] as Obj)
  const model = predictor.model as Obj | undefined
  if (!model) {
    return {
      kind: 'invalid',
      reason: 'InvalidPredictorSpec',
      message: 'the rig reconciler supports predictor.model (MLflow) and predictor.containers only',
    }
  }
  const format = String((model.modelFormat as Obj | undefined)?.name ?? '')
  const noRuntime = {
    kind: 'invalid',
    reason: 'NoSupportingRuntime',
    message: 'No runtime found to support specified framework/version',
  } as const
  if (model.runtime !== undefined && model.runtime !== 'kserve-mlserver') {
    return {
      kind: 'invalid',
      reason: 'RuntimeNotRecognized',
      message: `ServingRuntime "${String(model.runtime)}" not found (the rig has kserve-mlserver only)`,
    }
  }
  if (format !== 'mlflow') return noRuntime
  if (model.runtime === undefined && model.protocolVersion !== 'v2') return noRuntime // v2-only runtime
  const uri = String(model.storageUri ?? '')
  const path = uri.startsWith('file://') ? uri.slice('file://'.length) : uri.startsWith('/') ? uri : undefined
  if (!path) {
    return {
      kind: 'invalid',
      reason: 'ModelLoadFailed',
      message: `storageUri "${uri}" cannot be loaded by the rig: only file:// URIs and absolute paths are supported`,
    }
  }
  return { kind: 'mlserver', modelName: String((obj.metadata as Obj).name), modelUri: path, env: envOf(model.env) }
}

// --- revisions ------------------------------------------------------------------------------------
function ownerLabel(t: Tracked): string {
  return `${t.namespace}/${KINDS[t.kind].kind}/${t.name}`
}

async function startRevision(t: Tracked, rev: Revision): Promise<void> {
  const plan = rev.plan
  try {
    if (plan.kind === 'invalid') return fail(t, rev, 'InvalidSpec', plan.message)
    if (plan.kind === 'image') {
      const err = await docker.pull(plan.image)
      if (err)
        return fail(
          t,
          rev,
          'ContainerMissing',
          `Unable to fetch image "${plan.image}": failed to resolve image to digest: ${err}`,
        )
    }
    if (rev.state !== 'starting') return // superseded while pulling
    const ports = await docker.freePorts(3)
    const [http, grpc, metrics] = ports.map(String) as [string, string, string]
    // Host networking: every revision gets its own ports. Knative's containerPort (default 8080) and
    // MLServer's defaults (8080/8081/8082) would collide, so the rig overrides them here.
    const portEnv = {
      PORT: http,
      MLSERVER_HTTP_PORT: http,
      MLSERVER_GRPC_PORT: grpc,
      MLSERVER_METRICS_PORT: metrics,
      MLSERVER_HOST: '127.0.0.1',
    }
    if (plan.kind === 'image') {
      const kn: Record<string, string> =
        t.kind === 'ksvc' ? { K_SERVICE: t.name, K_CONFIGURATION: t.name, K_REVISION: rev.name } : {}
      rev.handle = await docker.runContainer(
        {
          name: `rig-${t.kind}-${t.namespace}-${rev.name}`,
          image: plan.image,
          env: { ...plan.env, ...kn, ...portEnv },
          command: plan.command,
          args: plan.args,
          labels: {
            [docker.OWNER_LABEL]: ownerLabel(t),
            [docker.REVISION_LABEL]: rev.name,
            [docker.HASH_LABEL]: rev.hash,
            [docker.PORT_LABEL]: http,
          },
        },
        ports,
      )
    } else {
      rev.handle = docker.runHostMlserver(
        `${STATE_DIR}/${t.namespace}-${rev.name}`,
        {
          ...plan.env,
          MLSERVER_MODEL_NAME: plan.modelName,
          MLSERVER_MODEL_IMPLEMENTATION: 'mlserver_mlflow.MLflowRuntime',
          MLSERVER_MODEL_URI: plan.modelUri,
          ...portEnv,
        },
        ports,
      )
    }
    if (rev.state !== 'starting') return void (await docker.stop(rev.handle)) // superseded meanwhile
    rev.url = `http://127.0.0.1:${http}`
    log(`${t.key}: revision ${rev.name} started on ${rev.url}`)
    await waitReady(t, rev, readyPath(plan))
  } catch (e) {
    await fail(t, rev, 'InternalError', e instanceof Error ? e.message : String(e))
  }
}

/** The image's readiness probe path; for a storageUri model, that model's own readiness (a server
 * whose model failed to load is briefly "ready" with no models before it exits). */
function readyPath(plan: Plan): string {
  return plan.kind === 'image'
    ? plan.readyPath
    : plan.kind === 'mlserver'
      ? `/v2/models/${plan.modelName}/ready`
      : '/v2/health/ready'
}

async function waitReady(t: Tracked, rev: Revision, path: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (rev.state === 'starting' && rev.handle) {
    const live = await docker.liveness(rev.handle)
    if (!live.running) {
      return fail(t, rev, `ExitCode${live.exitCode}`, exitMessage(live.logs, live.exitCode), live.exitCode)
    }
    try {
      const r = await fetch(`${rev.url}${path}`, { signal: AbortSignal.timeout(2000) })
      if (r.ok) {
        rev.state = 'ready'
        if (revisionNumber(rev.name) >= revisionNumber(t.latestReady) || !t.latestReady) t.latestReady = rev.name
        log(`${t.key}: revision ${rev.name} ready`)
        await event(t, 'Normal', 'RevisionReady', `Revision "${rev.name}" is ready at ${rev.url}`)
        return enqueue(t.key)
      }
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) {
      return fail(
        t,
        rev,
        'ProgressDeadlineExceeded',
        `Initial scale was never achieved: ${path} not ready after ${READY_TIMEOUT_MS / 1000} s`,
      )
    }
    await new Promise((r) => setTimeout(r, 1000))
  }
}

async function fail(t: Tracked, rev: Revision, reason: string, message: string, exitCode?: number): Promise<void> {
  if (rev.state !== 'starting' && rev.state !== 'ready') return // already failed, or stopped on purpose
  Object.assign(rev, { state: 'failed', reason, message, exitCode, failedAt: new Date().toISOString(), url: undefined })
  log(`${t.key}: revision ${rev.name} failed: ${reason}: ${message}`)
  if (rev.handle) await docker.stop(rev.handle)
  rev.handle = undefined
  await event(t, 'Warning', 'RevisionFailed', `Revision "${rev.name}" failed with message: ${message}.`)
  enqueue(t.key)
}

/** A running revision whose container exits later fails too (a crash-looping pod, in a cluster);
 * this also catches a server that answered ready for a moment before exiting. */
async function checkRunning(): Promise<void> {
  for (const t of tracked.values()) {
    for (const rev of t.revisions) {
      if (rev.state !== 'ready' || !rev.handle) continue
      const live = await docker.liveness(rev.handle)
      if (!live.running && rev.state === 'ready') {
        await fail(t, rev, `ExitCode${live.exitCode}`, exitMessage(live.logs, live.exitCode), live.exitCode)
      }
    }
  }
}
function exitMessage(logs: string, exitCode: number): string {
  return `Container failed with: ${logs || '(no output)'} (exit code ${exitCode})`
}

async function stopRevision(t: Tracked, rev: Revision): Promise<void> {
  log(`${t.key}: stopping revision ${rev.name}`)
  if (rev.state === 'ready' || rev.state === 'starting') rev.state = 'stopped'
  rev.url = undefined
  const h = rev.handle
  rev.handle = undefined
  if (h) await docker.stop(h)
}

// --- events -----------------------------------------------------------------------------------------
async function event(t: Tracked, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
  const obj = informers[t.kind].get(t.name, t.namespace)
  if (!obj?.metadata) return
  const now = new Date()
  try {
    await core.createNamespacedEvent({
      namespace: t.namespace,
      body: {
        metadata: { generateName: `${t.name}.`, namespace: t.namespace },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: t.name,
          namespace: t.namespace,
          uid: obj.metadata.uid,
          resourceVersion: obj.metadata.resourceVersion,
        },
        type,
        reason,
        message,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: t.kind === 'ksvc' ? 'service-controller' : 'inferenceservice-controller' },
        reportingComponent: 'rig-reconciler',
        reportingInstance: hostname(),
      },
    })
  } catch (e) {
    log(`${t.key}: event ${reason} not recorded:`, e instanceof Error ? e.message : e)
  }
}

// --- reconcile ------------------------------------------------------------------------------------
async function init(t: Tracked, obj: Obj): Promise<void> {
  t.initialized = true
  const prev = saved[t.key]
  delete saved[t.key]
  if (prev && prev.uid === t.uid) {
    // Same object as before our restart: carry on where we were.
    Object.assign(t, { ...prev, revisions: [], initialized: true })
    for (const r of prev.revisions) {
      const rev: Revision = { ...r, handle: undefined, url: undefined }
      t.revisions.push(rev)
      if (rev.state !== 'ready' && rev.state !== 'starting') continue
      const port = r.handle?.ports[0]
      if (r.handle && port && (await docker.liveness(r.handle)).running) {
        rev.handle = r.handle
        rev.url = `http://127.0.0.1:${port}`
        r.handle.ports.forEach(docker.reservePort)
        log(`${t.key}: adopted ${rev.name} (${rev.url})`)
        if (rev.state === 'starting') void waitReady(t, rev, readyPath(rev.plan))
      } else if (rev.name === t.latestReady || rev.state === 'starting') {
        // Its container or host process is gone (docker or the reconciler restarted): run it again.
        log(`${t.key}: ${rev.name} is not running any more, starting it again`)
        rev.state = 'starting'
        void startRevision(t, rev)
      } else {
        rev.state = 'stopped'
      }
    }
    return
  }
  // First sight: continue the revision numbering the status shows.
  const status = (obj.status ?? {}) as Obj
  const predictor = ((status.components as Obj | undefined)?.predictor ?? {}) as Obj
  t.nextNumber =
    revisionNumber((status.latestCreatedRevisionName ?? predictor.latestCreatedRevision) as string | undefined) + 1
  t.childGeneration = Number(status.observedGeneration ?? 0)
  t.latestRolledout = predictor.latestRolledoutRevision as string | undefined
  t.previousRolledout = predictor.previousRolledoutRevision as string | undefined
  t.lastWritten = status
}

async function reconcile(key: string): Promise<void> {
  const [namespace = '', kind, name = ''] = key.split('/') as [string, KindName, string]
  const obj = informers[kind].get(name, namespace) as unknown as Obj | undefined
  let t = tracked.get(key)
  if (!obj || (obj.metadata as Obj).deletionTimestamp) {
    if (t) {
      log(`${key}: deleted, stopping its revisions`)
      tracked.delete(key)
      for (const rev of t.revisions) await stopRevision(t, rev)
      saveState()
    }
    return
  }
  if (!t) {
    const uid = String((obj.metadata as Obj).uid)
    t = { key, uid, kind, namespace, name, initialized: false, nextNumber: 1, revisions: [], childGeneration: 0 }
    tracked.set(key, t)
  }
  if (!t.initialized) await init(t, obj)

  // A changed revision template → a new revision (KServe: a new child-ksvc generation too).
  const hash = kind === 'ksvc' ? knativeTemplateHash(obj) : kserveTemplateHash(obj)
  const routing = hashOf([
    (obj.spec as Obj).predictor && ((obj.spec as Obj).predictor as Obj).canaryTrafficPercent,
    (obj.metadata as Obj).annotations,
  ])
  if (hash !== t.hash) {
    t.hash = hash
    const plan = planFor(kind, obj)
    if (kind === 'isvc') t.childGeneration++
    if (kind === 'isvc' && plan.kind === 'invalid') {
      t.invalid = { reason: plan.reason, message: plan.message }
      await event(t, 'Warning', plan.reason, plan.message)
    } else {
      t.invalid = undefined
      const prefix = kind === 'ksvc' ? name : `${name}-predictor`
      const byo =
        kind === 'ksvc'
          ? ((((obj.spec as Obj).template as Obj | undefined)?.metadata as Obj | undefined)?.name as string | undefined)
          : undefined
      const revName = byo && !t.revisions.some((r) => r.name === byo) ? byo : revisionName(prefix, t.nextNumber)
      t.nextNumber++
      // A revision still starting for an older template is superseded.
      for (const r of t.revisions) if (r.state === 'starting') await stopRevision(t, r)
      const rev: Revision = { name: revName, state: 'starting', hash, plan }
      t.revisions.push(rev)
      log(`${key}: generation ${String((obj.metadata as Obj).generation)} → revision ${revName}`)
      void startRevision(t, rev)
    }
  } else if (kind === 'isvc' && routing !== t.routingHash && t.routingHash !== undefined) {
    t.childGeneration++
  }
  t.routingHash = routing

  // Status, as the real controller would write it.
  const now = new Date().toISOString()
  let desired: Obj
  let referenced: string[]
  if (kind === 'ksvc') {
    const r = knativeStatus(obj, {
      generation: Number((obj.metadata as Obj).generation),
      revisions: t.revisions,
      latestReady: t.latestReady,
    })
    desired = r.status
    referenced = r.referenced
  } else {
    const r = kserveStatus(
      obj,
      {
        childGeneration: t.childGeneration,
        revisions: t.revisions,
        latestReady: t.latestReady,
        latestRolledout: t.latestRolledout,
        previousRolledout: t.previousRolledout,
        invalid: t.invalid,
      },
      now,
    )
    desired = r.status
    referenced = r.referenced
    t.latestRolledout = r.latestRolledout
    t.previousRolledout = r.previousRolledout
  }
  const current = t.lastWritten ?? ((obj.status ?? {}) as Obj)
  desired.conditions = withTransitionTimes(
    current.conditions as Condition[] | undefined,
    desired.conditions as unknown as Condition[],
    now,
  ) as unknown as Json
  keepFailureTime(current, desired)
  if (stableJson(current) !== stableJson(desired)) {
    const wasReady = readyOf(current)
    await custom.patchNamespacedCustomObjectStatus(
      { ...KINDS[kind], namespace, name, body: { status: mergePatch(current, desired) } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    t.lastWritten = desired
    log(
      `${key}: status Ready=${readyOf(desired)} ${stableJson((desired.conditions as Obj[]).find((c) => c.type === 'Ready')?.reason ?? '')}`,
    )
    if (kind === 'isvc' && wasReady !== 'True' && readyOf(desired) === 'True') {
      await event(t, 'Normal', 'InferenceServiceReady', `InferenceService [${name}] is Ready`)
    }
  }

  // Stop what nothing needs any more: a revision keeps running while it is the latest ready one,
  // still starting, or referenced by traffic.
  const keep = new Set([
    ...referenced,
    t.latestReady,
    ...t.revisions.filter((r) => r.state === 'starting').map((r) => r.name),
  ])
  for (const rev of t.revisions)
    if (rev.handle && rev.state === 'ready' && !keep.has(rev.name)) await stopRevision(t, rev)
  // Traffic pinned to a revision we stopped earlier: run it again (Knative would scale it up).
  for (const rev of t.revisions) {
    if (rev.state === 'stopped' && referenced.includes(rev.name)) {
      rev.state = 'starting'
      void startRevision(t, rev)
    }
  }
  saveState()
}

function readyOf(status: Obj): string | undefined {
  return (status.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready')?.status
}
/** modelStatus.lastFailureInfo.time stays what it was for the same failure. */
function keepFailureTime(current: Obj, desired: Obj): void {
  const cur = (current.modelStatus as Obj | undefined)?.lastFailureInfo as Obj | undefined
  const des = (desired.modelStatus as Obj | undefined)?.lastFailureInfo as Obj | undefined
  if (cur && des && cur.message === des.message && cur.reason === des.reason) des.time = cur.time ?? des.time ?? null
}

// --- watch loop ---------------------------------------------------------------------------------
async function watch(kind: KindName): Promise<void> {
  const k = KINDS[kind]
  const inf = makeInformer<KubernetesObject>(
    kc,
    `/apis/${k.group}/${k.version}/${k.plural}`,
    () => custom.listClusterCustomObject({ group: k.group, version: k.version, plural: k.plural }) as never,
  )
  informers[kind] = inf
  const onObj = (o: KubernetesObject) => enqueue(keyOf(kind, o.metadata?.namespace ?? '', o.metadata?.name ?? ''))
  inf.on('add', onObj)
  inf.on('update', onObj)
  inf.on('delete', onObj)
  // The informer reconnects on a closed watch and relists on 410 Gone by itself; other errors
  // stop it, so start it again after a pause.
  inf.on('error', (err) => {
    log(`${kind} watch error, restarting in 2 s:`, String(err instanceof Error ? err.message : err).split('\n')[0])
    setTimeout(() => void inf.start().catch(() => {}), 2000)
  })
  await inf.start()
}

/** All objects of a kind, retried while the apiserver is not ready for it yet. */
async function listAll(kind: KindName): Promise<Obj[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const list = (await custom.listClusterCustomObject({
        group: KINDS[kind].group,
        version: KINDS[kind].version,
        plural: KINDS[kind].plural,
      })) as { items: Obj[] }
      return list.items
    } catch (e) {
      if (attempt >= 60) throw e
      await new Promise((r) => setTimeout(r, 1000))
    }
  }
}

async function main(): Promise<void> {
  loadState()
  // Drop what belongs to objects deleted while we were down, and containers we do not know.
  const live = new Map<string, string>() // key → uid
  for (const kind of WATCHED) {
    for (const o of await listAll(kind)) {
      const m = o.metadata as Obj
      live.set(keyOf(kind, String(m.namespace), String(m.name)), String(m.uid))
    }
  }
  for (const [key, st] of Object.entries(saved)) if (live.get(key) !== st.uid) delete saved[key]
  const known = new Set(Object.values(saved).flatMap((st) => st.revisions.map((r) => r.handle?.id)))
  const owned = await docker.ownedContainers()
  log(
    `rig reconciler starting; ${Object.keys(saved).length} object(s) and ${owned.length} container(s) from an earlier life`,
  )
  for (const c of owned.filter((c) => !known.has(c.id))) {
    log(`removing orphan container ${c.labels[docker.REVISION_LABEL]} (${c.labels[docker.OWNER_LABEL]})`)
    await docker.removeContainer(c.id)
  }
  await Promise.all(WATCHED.map(watch))
  // Periodic resync heals anything a missed event left behind.
  setInterval(() => tracked.forEach((t) => enqueue(t.key)), 30_000)
  setInterval(() => void checkRunning().catch((e) => log('checking revisions failed:', e)), 5_000)
  log('watching serving.knative.dev/v1 services')
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    // Host MLServer processes go with us; containers stay and are adopted on the next start.
    tracked.forEach((t) => t.revisions.forEach((r) => r.handle && docker.killHostProcess(r.handle)))
    process.exit(0)
  })
}
main().catch((e) => {
  console.error(e)
  process.exit(1)
})
