// Benchmark: how long after Knative marks a new revision Ready does the action's wait notice?
// Against the rig's real Knative Serving: each trial updates a Knative Service running the rig's
// tiny HTTP image (a new revision), and both an independent watch on the Service and the action's
// waitReady are started; the gap is from the watch seeing Ready=True at the new generation to
// waitReady returning. (The action polls the Service and the revision's pods every second.)
//   node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/notice.ts [trials]
import { ServingCluster } from '../src/k8s/index.js'
import { KNATIVE_SERVICE, type WatchEventType } from '../src/k8s/kube.js'
import type { KubeObject } from '../src/k8s/readiness.js'
import { MemoryLogger } from '../test/support/memory-logger.js'
import { rigEnv } from '../test/integration/rig-env.js'
import { applyAndWait } from '../test/integration/k8s/fixtures.js'

const trials = Number(process.argv[2] ?? 10)
const ns = 'deploy'
const name = `bench-notice-${Date.now().toString(36).slice(-5)}`
const log = new MemoryLogger()
const cluster = ServingCluster.connect(
  { kubeconfig: { path: rigEnv('KUBECONFIG_DEPLOYER') }, kubeContext: undefined },
  log,
)

const manifest = (v: number): KubeObject => ({
  apiVersion: 'serving.knative.dev/v1',
  kind: 'Service',
  metadata: { name, namespace: ns, labels: { 'app.kubernetes.io/managed-by': 'mlflow-k8s-deploy' } },
  spec: {
    template: {
      metadata: { annotations: { 'autoscaling.knative.dev/min-scale': '1' } },
      spec: { containers: [{ image: rigEnv('NODE_HTTP_IMAGE'), env: [{ name: 'V', value: String(v) }] }] },
    },
  },
})

const readyAt = (o: KubeObject | undefined, generation: number) => {
  const s = (o?.status ?? {}) as Record<string, unknown>
  const ready = ((s['conditions'] ?? []) as { type: string; status: string }[]).find((c) => c.type === 'Ready')
  return s['observedGeneration'] === generation && ready?.status === 'True'
}

/** When a watch of its own first sees the Service Ready at `generation`. */
async function watchReady(generation: number, signal: AbortSignal): Promise<number> {
  const { resourceVersion } = await cluster.kube.list(KNATIVE_SERVICE, ns, name, signal)
  return new Promise((resolve, reject) => {
    const onEvent = (_t: WatchEventType, o: unknown) => {
      if (readyAt(o as KubeObject, generation)) resolve(performance.now())
    }
    cluster.kube.watch(KNATIVE_SERVICE, ns, name, resourceVersion, onEvent, signal).catch(reject)
  })
}

await applyAndWait(cluster, manifest(0), { timeoutMs: 120_000 })
const gaps: number[] = []
try {
  for (let i = 1; i <= trials; i++) {
    const stop = new AbortController()
    const applied = await cluster.apply(manifest(i))
    const seen = watchReady(applied.expectation.generation, stop.signal)
    await cluster.waitReady(applied, { timeoutMs: 120_000 })
    const noticed = performance.now()
    gaps.push(noticed - (await seen))
    stop.abort()
  }
} finally {
  await cluster.remove({ target: 'knative', namespace: ns, name }, { timeoutMs: 60_000 })
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!
const fmt = (x: number) => `${x.toFixed(0)} ms`
console.log(`trials: ${trials}`)
console.log(
  `waitReady returned after a watch saw Ready: median ${fmt(pct(gaps, 50))}, p90 ${fmt(pct(gaps, 90))}, max ${fmt(Math.max(...gaps))}`,
)
