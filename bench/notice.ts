// Benchmark: how long after a Knative Service's status turns Ready does the action's wait notice?
// Against the rig's real kube-apiserver. A Service whose container never gets ready keeps the rig
// reconciler out of the way (it leaves Ready=Unknown); this script then plays the controller:
// each trial sets Ready=Unknown, starts the action's waitReady (a watch), and PATCHes
// Ready=True on /status with the admin token. The gap is from the PATCH's answer to the wait
// returning (upper bound: from sending the PATCH).
//   node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/notice.ts [trials]
import { renderOptions } from '../test/support/fixtures.js'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { ServingCluster } from '../src/k8s/index.js'
import { renderManifest } from '../src/k8s/render.js'
import { MemoryLogger } from '../src/util/logger.js'
import { rigEnv } from '../test/integration/rig-env.js'

const trials = Number(process.argv[2] ?? 20)
const ns = 'deploy'
const name = `bench-notice-${Date.now().toString(36).slice(-5)}`
const log = new MemoryLogger()
const cluster = ServingCluster.connect(
  { kubeconfig: { path: rigEnv('KUBECONFIG_DEPLOYER') }, kubeContext: undefined },
  log,
)
const admin = new Agent({ connect: { ca: readFileSync(rigEnv('KUBE_CA')) } })
const statusUrl = `${rigEnv('KUBE_SERVER')}/apis/serving.knative.dev/v1/namespaces/${ns}/services/${name}/status`

async function patchStatus(status: Record<string, unknown>): Promise<void> {
  const res = await request(statusUrl, {
    method: 'PATCH',
    dispatcher: admin,
    headers: { authorization: `Bearer ${rigEnv('KUBE_ADMIN_TOKEN')}`, 'content-type': 'application/merge-patch+json' },
    body: JSON.stringify({ status }),
  })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`PATCH status: ${res.statusCode} ${text}`)
}

const manifest = renderManifest(
  { name, namespace: ns, modelUri: 'models:/bench/1', image: rigEnv('BASE_IMAGE') },
  renderOptions(),
)
const spec = manifest.spec as { template: { spec: { containers: Record<string, unknown>[] } } }
spec.template.spec.containers[0]!['command'] = ['/bin/sh', '-c', 'sleep 3600']

const applied = await cluster.apply(manifest)
const generation = applied.expectation.generation
const revision = `${name}-00001`
const condition = (status: string) => ['Ready', 'ConfigurationsReady', 'RoutesReady'].map((type) => ({ type, status }))
const gaps: number[] = []
const uppers: number[] = []
try {
  for (let i = 0; i < trials; i++) {
    await patchStatus({
      observedGeneration: generation,
      latestCreatedRevisionName: revision,
      conditions: condition('Unknown'),
    })
    let noticed = 0
    const waiting = cluster.waitReady(applied, { timeoutMs: 30_000 }).then(() => (noticed = performance.now()))
    await new Promise((r) => setTimeout(r, 300)) // the watch is open by now
    const sent = performance.now()
    await patchStatus({
      observedGeneration: generation,
      latestCreatedRevisionName: revision,
      latestReadyRevisionName: revision,
      url: 'http://127.0.0.1:1',
      conditions: condition('True'),
    })
    const answered = performance.now()
    await waiting
    gaps.push(noticed - answered)
    uppers.push(noticed - sent)
  }
} finally {
  await cluster.remove({ target: 'knative', namespace: ns, name }, { timeoutMs: 60_000 })
  await admin.close()
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!
const fmt = (x: number) => `${x.toFixed(1)} ms`
console.log(`trials: ${trials}`)
console.log(
  `notice after the status PATCH answered: median ${fmt(pct(gaps, 50))}, p90 ${fmt(pct(gaps, 90))}, max ${fmt(Math.max(...gaps))}`,
)
console.log(
  `notice after the status PATCH was sent:  median ${fmt(pct(uppers, 50))}, p90 ${fmt(pct(uppers, 90))}, max ${fmt(Math.max(...uppers))}`,
)
