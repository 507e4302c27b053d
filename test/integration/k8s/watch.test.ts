// The watch loop against the real kube-apiserver: a quiet watch is ended by client-node after
// 30 s and must be re-opened from the last resourceVersion; a too-old resourceVersion gets the
// server's 410 Gone, which the loop answers with a relist.
import { renderOptions } from '../../support/fixtures.js'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { ServingCluster } from '../../../src/k8s/index.js'
import { KNATIVE_SERVICE, type WatchEventType } from '../../../src/k8s/kube.js'
import { renderServingManifest } from '../../../src/k8s/render.js'
import { waitFor } from '../../../src/k8s/wait.js'
import { systemClock } from '../../../src/util/clock.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'

const ns = 'deploy'
const name = `it-watch-${Date.now().toString(36).slice(-5)}`
const log = new MemoryLogger()
let cluster: ServingCluster

beforeAll(async () => {
  cluster = ServingCluster.connect({ kubeconfig: { path: rigEnv('KUBECONFIG_DEPLOYER') }, kubeContext: undefined }, log)
  const m = renderServingManifest(
    { name, namespace: ns, modelUri: 'models:/x/1', image: rigEnv('BASE_IMAGE') },
    renderOptions(),
  )
  // Never ready, and quiet: Knative leaves the status at Ready=Unknown until the progress deadline (600 s).
  ;(m.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec.containers[0]![
    'command'
  ] = ['/bin/sh', '-c', 'sleep 3600']
  await cluster.apply(m)
})

afterAll(() => cluster.remove({ target: 'knative', namespace: ns, name }, { timeoutMs: 60_000 }))

test('a watch quiet for more than 30 s is re-opened and still sees the change', async () => {
  const kube = cluster.kube
  const stream = {
    list: (signal: AbortSignal) => kube.list(KNATIVE_SERVICE, ns, name, signal),
    watch: (rv: string, onEvent: (t: WatchEventType, o: unknown) => void, signal: AbortSignal) =>
      kube.watch(KNATIVE_SERVICE, ns, name, rv, onEvent, signal),
  }
  const marked = waitFor(
    stream,
    (o) =>
      o?.metadata?.annotations?.['it/marker'] === 'set' ? { state: 'done' } : { state: 'pending', detail: 'no marker' },
    { timeoutMs: 90_000, clock: systemClock, log, what: 'marker' },
  )
  await new Promise((r) => setTimeout(r, 40_000))
  const agent = new Agent({ connect: { ca: readFileSync(rigEnv('KUBE_CA')) } })
  const res = await request(`${rigEnv('KUBE_SERVER')}/apis/serving.knative.dev/v1/namespaces/${ns}/services/${name}`, {
    method: 'PATCH',
    dispatcher: agent,
    headers: { authorization: `Bearer ${rigEnv('KUBE_ADMIN_TOKEN')}`, 'content-type': 'application/merge-patch+json' },
    body: JSON.stringify({ metadata: { annotations: { 'it/marker': 'set' } } }),
  })
  await res.body.text()
  await agent.close()
  expect(res.statusCode).toBe(200)
  const result = await marked
  expect(result.watches).toBeGreaterThanOrEqual(2)
}, 120_000)

test('a too-old resourceVersion: the real 410 Gone is answered with a relist', async () => {
  const kube = cluster.kube
  const watched: string[] = []
  let lists = 0
  const result = await waitFor(
    {
      list: async (signal) => {
        lists++
        const listed = await kube.list(KNATIVE_SERVICE, ns, name, signal)
        // The first list pretends to be ancient, as after a long disconnect.
        return lists === 1 ? { ...listed, resourceVersion: '1' } : listed
      },
      watch: (rv, onEvent, signal) => {
        watched.push(rv)
        return kube.watch(KNATIVE_SERVICE, ns, name, rv, onEvent, signal)
      },
    },
    // Done as soon as a watch has delivered the object (ADDED is not sent when watching from a
    // resourceVersion, so the relisted object must be the one judged).
    (o) => (lists >= 2 && o ? { state: 'done' } : { state: 'pending', detail: `lists ${lists}` }),
    { timeoutMs: 30_000, clock: systemClock, log, what: 'relist' },
  )
  expect(watched[0]).toBe('1')
  expect(result.relists).toBe(1)
  expect(lists).toBe(2)
})
