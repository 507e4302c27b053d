// The cluster facade against the real rig: kube-apiserver v1.36, the real Knative Serving v0.48.1
// controllers running each revision on the node, and its routes served by Envoy through Contour and
// net-gateway-api (KServe: kserve.test.ts). Every deploy here answers a real wine prediction over
// V2 through the ingress. Nothing is skipped: an unreachable server fails the test.
import { renderOptions } from '../../support/fixtures.js'
import { INFERENCE_SERVICE, KNATIVE_SERVICE, Kube, KubeConfigTransport } from '../../../src/k8s/kube.js'
import { ServingCluster, RolloutError, type Deployment } from '../../../src/k8s/index.js'
import { smokeTestDeployment } from '../../../src/pipeline/smoke-test.js'
import { loadKubeconfig } from '../../../src/k8s/kubeconfig.js'
import { renderServingManifest, type Shape } from '../../../src/k8s/render.js'
import type { KubeObject } from '../../../src/k8s/readiness.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'
import { call, ingressAddress, predict, pyfuncPrediction } from '../action/run-action.js'
import {
  applyAndWait,
  fixtureModel,
  modelImage,
  wineManifest,
  withLyingSignature,
  type FixtureModel,
} from './fixtures.js'

const NS = 'deploy'
const suffix = Date.now().toString(36).slice(-5)
const TIMEOUT = 180_000
const LONG = 600_000

const log = new MemoryLogger()
const as = (who: 'ADMIN' | 'DEPLOYER') =>
  ServingCluster.connect({ kubeconfig: { path: rigEnv(`KUBECONFIG_${who}`) }, kubeContext: undefined }, log)
let deployer: ServingCluster
let admin: ServingCluster
const created: { target: 'knative' | 'kserve'; name: string; namespace: string }[] = []

beforeAll(() => {
  deployer = as('DEPLOYER')
  admin = as('ADMIN')
})

afterAll(async () => {
  for (const c of created) {
    await admin.remove(c, { timeoutMs: 60_000, takeOver: true }).catch((e) => console.warn(`cleanup ${c.name}: ${e}`))
  }
})

function manifest(
  shape: Shape,
  name: string,
  values: { image?: string; storageUri?: string; version?: string },
  namespace = NS,
) {
  const target = shape === 'knative' ? 'knative' : 'kserve'
  if (!created.some((c) => c.name === name && c.namespace === namespace)) created.push({ target, name, namespace })
  return wineManifest(shape, name, values, { namespace, maxScale: 2 })
}

const smoke = (cluster: ServingCluster, d: Deployment, model: FixtureModel) =>
  smokeTestDeployment(
    { cluster, log },
    d,
    { signature: model.signature, example: model.example },
    { timeoutMs: 60_000, ingress: { address: ingressAddress() } },
  )

describe('rendered objects and the real CRD schemas', () => {
  test('all three shapes pass server-side apply with strict field validation (dry run)', async () => {
    const kube = deployer.kube
    for (const [shape, values] of [
      ['knative', { image: 'r.example/wine@sha256:' + 'a'.repeat(64) }],
      ['kserve-container', { image: 'r.example/wine@sha256:' + 'a'.repeat(64) }],
      ['kserve-mlflow', { storageUri: 's3://bucket/1/models/m-1/artifacts' }],
    ] as const) {
      const m = renderServingManifest(
        { name: `strict-${suffix}`, namespace: NS, modelUri: 'models:/wine-classifier/1', ...values },
        {
          shape,
          env: [{ name: 'A', value: '1' }],
          labels: { team: 'it' },
          annotations: { note: 'x' },
          resources: { requests: { cpu: '1' }, limits: { memory: '1Gi' } },
          minScale: 1,
          maxScale: 3,
        },
      )
      const { object } = await kube.apply(m, { dryRun: true })
      expect(object.metadata?.name).toBe(`strict-${suffix}`)
    }
    // And a misspelt field is refused, not dropped.
    const bad = renderServingManifest(
      { name: `strict-${suffix}`, namespace: NS, modelUri: 'm', image: 'r/x@sha256:' + 'a'.repeat(64) },
      renderOptions(),
      { apiVersion: 'serving.knative.dev/v1', kind: 'Service', spec: { template: { spec: { containerz: [] } } } },
    )
    await expect(kube.apply(bad, { dryRun: true })).rejects.toThrow(
      `Service ${NS}/strict-${suffix}: the manifest does not fit the cluster's Service schema: .spec.template.spec.containerz: field not declared in schema`,
    )
  })
})

describe('Knative Service running the serving image', () => {
  const name = `it-ksvc-${suffix}`

  test(
    'deploy v1, update to v2 (new revision), back to v1; every revision answers',
    async () => {
      const [v1, v2] = await Promise.all([fixtureModel('1'), fixtureModel('2')])
      const [img1, img2] = await Promise.all([modelImage('1'), modelImage('2')])

      const first = await applyAndWait(deployer, manifest('knative', name, { image: img1, version: '1' }), {
        timeoutMs: TIMEOUT,
      })
      expect(first).toMatchObject({ created: true, revision: `${name}-00001`, previousRevision: undefined })
      expect(first.url).toBe(`http://${name}.${NS}.${rigEnv('KNATIVE_DOMAIN')}`)
      const s1 = await smoke(deployer, first, v1)
      expect(await predict(first.url!, name)).toEqual(pyfuncPrediction('1'))
      expect(s1).toMatchObject({
        source: 'input example',
        outputs: [{ name: 'output-1', shape: [3, 1], datatype: 'INT64' }],
      })
      console.log(
        `knative v1: ready in ${Math.round(first.waitedMs)} ms, prediction ${JSON.stringify(s1.sample)} in ${Math.round(s1.latencyMs)} ms`,
      )

      const second = await applyAndWait(deployer, manifest('knative', name, { image: img2, version: '2' }), {
        timeoutMs: TIMEOUT,
      })
      expect(second).toMatchObject({
        created: false,
        changed: true,
        revision: `${name}-00002`,
        previousRevision: `${name}-00001`,
      })
      await smoke(deployer, second, v2)
      expect(await predict(second.url!, name)).toEqual(pyfuncPrediction('2'))

      const back = await applyAndWait(deployer, manifest('knative', name, { image: img1, version: '1' }), {
        timeoutMs: TIMEOUT,
      })
      expect(back).toMatchObject({ revision: `${name}-00003`, previousRevision: `${name}-00002` })
      await smoke(deployer, back, v1)

      // Re-applying the same spec changes nothing and is ready at once.
      const same = await applyAndWait(deployer, manifest('knative', name, { image: img1, version: '1' }), {
        timeoutMs: TIMEOUT,
      })
      expect(same).toMatchObject({ changed: false, revision: `${name}-00003` })
    },
    LONG,
  )

  test(
    'a broken update (unpullable image) fails fast and is rolled back by a traffic switch; the previous revision answers throughout',
    async () => {
      const v1 = await fixtureModel('1')
      const missing = `${rigEnv('REGISTRY')}/it-k8s-no-such-image@sha256:${'0'.repeat(64)}`
      const before = await deployer.kube.get(KNATIVE_SERVICE, NS, name)
      const oldUrl = (before?.status as { url: string }).url
      const serving = (before?.status as { latestReadyRevisionName: string }).latestReadyRevisionName
      const applied = await deployer.apply(manifest('knative', name, { image: missing, version: '3' }))
      const failed = `${name}-0000${Number(serving.slice(-1)) + 1}`
      // Bounded requests through the rollout and the rollback: every one answered by the old revision.
      const answers: number[] = []
      let settled = false
      const polling = (async () => {
        while (!settled) {
          const res = await call(`${oldUrl}/v2/models/${name}/ready`, { timeoutMs: 5_000 })
          answers.push(res.status)
          await new Promise((r) => setTimeout(r, 200))
        }
      })()
      const started = Date.now()
      const err = (await deployer
        .waitReady(applied, { timeoutMs: TIMEOUT })
        .catch((e) => e)
        .finally(() => (settled = true))) as RolloutError
      await polling
      console.log(
        `unpullable update: failed and rolled back after ${Date.now() - started} ms, ${answers.length} requests`,
      )
      expect(answers.length).toBeGreaterThan(0)
      expect(answers.every((s) => s === 200)).toBe(true)
      expect(err).toBeInstanceOf(RolloutError)
      expect(err.outcome).toBe('rolled-back')
      // Knative itself would report the pull error only at the revision's progress deadline; the
      // registry's "not found" is final, so the first ErrImagePull decides.
      expect(err.message).toMatch(
        new RegExp(
          `failed: (ErrImagePull|ImagePullBackOff): revision ${failed} cannot start: pod ${failed}-deployment-\\S+ container mlserver: .*"${missing}".*not found.*; ` +
            `rolled back: traffic switched back to ${serving} 100% \\(model wine-classifier version 1\\); revision ${serving} serves; the failed revision ${failed} is left unrouted`,
        ),
      )
      expect(err.found).toEqual({ serving: { url: oldUrl, revision: serving }, failedRevision: failed })
      expect(err.evidence.join('\n')).toMatch(/pod (ErrImagePull|ImagePullBackOff): /)
      // A traffic switch: no new revision was cut, the failed one holds no traffic.
      const now = await deployer.kube.get(KNATIVE_SERVICE, NS, name)
      const status = now?.status as { latestCreatedRevisionName: string; traffic: unknown[] }
      expect(status.latestCreatedRevisionName).toBe(failed)
      expect(status.traffic).toEqual([
        expect.objectContaining({ revisionName: serving, percent: 100, latestRevision: false }),
      ])
      // The next deploy of a good model goes on from there.
      const again = await applyAndWait(
        deployer,
        manifest('knative', name, { image: await modelImage('1'), version: '1' }),
        {
          timeoutMs: TIMEOUT,
        },
      )
      expect(again.changed).toBe(true)
      expect(again.traffic).toEqual([expect.objectContaining({ revision: again.revision, percent: 100 })])
      await smoke(deployer, again, v1)
    },
    LONG,
  )

  test(
    'a smoke test that gets the wrong output shape fails, saying what was promised',
    async () => {
      const v1 = await fixtureModel('1')
      const d = await applyAndWait(
        deployer,
        manifest('knative', name, { image: await modelImage('1'), version: '1' }),
        {
          timeoutMs: TIMEOUT,
        },
      )
      const lying = withLyingSignature(v1)
      const err = await smokeTestDeployment(
        { cluster: deployer, log },
        d,
        { signature: lying.signature, example: v1.example },
        { timeoutMs: 30_000, rollBack: false, ingress: { address: ingressAddress() } },
      ).catch((e) => e)
      expect(err.message).toBe(
        `smoke test of /v2/models/${name}/infer: output output-1 has shape [3,1], the signature promises [-1,3]`,
      )
    },
    LONG,
  )
})

// InferenceServices: the real KServe controller, in kserve.test.ts.

describe('failures, each with a clear message', () => {
  test(
    'a crashing container fails fast; a first deploy is left for inspection',
    async () => {
      const name = `it-crash-${suffix}`
      const m = manifest('knative', name, { image: rigEnv('BASE_IMAGE') })
      const container = (m.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec
        .containers[0]!
      container['command'] = ['/bin/sh', '-c', 'echo "model exploded" >&2; exit 3']
      const applied = await deployer.apply(m)
      const err = (await deployer.waitReady(applied, { timeoutMs: TIMEOUT }).catch((e) => e)) as RolloutError
      expect(err.outcome).toBe('left-for-inspection')
      expect(err.message).toMatch(
        new RegExp(
          `failed: CrashLoopBackOff: revision ${name}-00001 cannot start: pod \\S+ container mlserver: exited with code 3: model exploded.*was created by this run and is left in place for inspection`,
        ),
      )
      expect(await deployer.kube.get(KNATIVE_SERVICE, NS, name)).toBeDefined()
    },
    LONG,
  )

  test(
    "a pod no node can take is tolerated for the wait-window, then fails with the scheduler's message",
    async () => {
      const name = `it-unsched-${suffix}`
      const m = manifest('knative', name, { image: await modelImage('1') })
      const container = (m.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec
        .containers[0]!
      container['resources'] = { requests: { cpu: '500' } }
      const applied = await deployer.apply(m)
      const err = (await deployer
        .waitReady(applied, { timeoutMs: TIMEOUT, waitWindowMs: 5_000 })
        .catch((e) => e)) as RolloutError
      expect(err).toBeInstanceOf(RolloutError)
      expect(err.message).toMatch(
        new RegExp(
          // The pods' PodScheduled, or Knative's RevisionFailed in the scheduler's words: whichever is read first.
          `failed: Unschedulable: .*${name}-00001.*0/1 nodes are available: 1 Insufficient cpu.* \\(for longer than the wait-window, 5\\.0 s\\)`,
        ),
      )
      expect(log.lines.some((l) => /Unschedulable, tolerated for the wait-window \(5\.0 s\)/.test(l))).toBe(true)
      expect(err.outcome).toBe('left-for-inspection')
      expect(err.found).toEqual({ failedRevision: `${name}-00001` })
    },
    LONG,
  )

  test(
    'timeout: a revision that never gets ready',
    async () => {
      const name = `it-slow-${suffix}`
      const m = manifest('knative', name, { image: rigEnv('BASE_IMAGE') })
      const container = (m.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec
        .containers[0]!
      container['command'] = ['/bin/sh', '-c', 'sleep 3600']
      const applied = await deployer.apply(m)
      const err = (await deployer.waitReady(applied, { timeoutMs: 8_000 }).catch((e) => e)) as RolloutError
      expect(err.message).toMatch(/not done after 8\.0 s; last state: Ready=Unknown/)
      expect(err.evidence.some((l) => l.startsWith('condition Ready=Unknown'))).toBe(true)
    },
    LONG,
  )

  test('namespace missing', async () => {
    const m = manifest('knative', `it-nons-${suffix}`, { image: rigEnv('BASE_IMAGE') }, `no-such-ns-${suffix}`)
    await expect(admin.apply(m)).rejects.toThrow(
      `namespace "no-such-ns-${suffix}" does not exist: create it first (the action does not create namespaces)`,
    )
  })

  test('RBAC forbidden: the deployer in the forbidden namespace', async () => {
    const ns = rigEnv('KUBE_FORBIDDEN_NAMESPACE')
    const m = manifest('knative', `it-rbac-${suffix}`, { image: rigEnv('BASE_IMAGE') }, ns)
    await expect(deployer.apply(m)).rejects.toThrow(
      `RBAC forbids "deployer" to get services.serving.knative.dev in namespace "${ns}"`,
    )
  })

  test('CRD not installed: a kind the cluster does not serve', async () => {
    const kube = deployer.kube
    await expect(kube.ensureInstalled({ ...KNATIVE_SERVICE, version: 'v9' })).rejects.toThrow(
      'Knative Serving is not installed in the cluster (no serving.knative.dev/v9 Service)',
    )
    await expect(kube.ensureInstalled({ ...INFERENCE_SERVICE, group: 'serving.kubeflow.org' })).rejects.toThrow(
      'KServe is not installed in the cluster (no serving.kubeflow.org/v1beta1 InferenceService)',
    )
  })

  test('API server unreachable, and TLS with an unknown CA', async () => {
    const loaded = loadKubeconfig({ kubeconfig: { path: rigEnv('KUBECONFIG_DEPLOYER') }, kubeContext: undefined })
    const text = loaded.config.exportConfig()
    const down = loadKubeconfig({
      kubeconfig: { content: text.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:1') },
      kubeContext: undefined,
    })
    await expect(new Kube(new KubeConfigTransport(down.config), log).get(KNATIVE_SERVICE, NS, 'x')).rejects.toThrow(
      'the Kubernetes API server https://127.0.0.1:1 is unreachable (ECONNREFUSED',
    )
    const noCa = JSON.parse(text)
    delete noCa.clusters[0].cluster['certificate-authority-data']
    delete noCa.clusters[0].cluster['caData']
    const tls = loadKubeconfig({ kubeconfig: { content: JSON.stringify(noCa) }, kubeContext: undefined })
    const err = await new Kube(new KubeConfigTransport(tls.config), log).get(KNATIVE_SERVICE, NS, 'x').catch((e) => e)
    expect(err.message).toMatch(/^TLS with the Kubernetes API server https:\/\/127\.0\.0\.1:\d+ failed \(/)
    expect(err.message).not.toContain(rigEnv('KUBE_DEPLOYER_TOKEN'))
  })

  test('an object the action does not manage is neither updated nor deleted without consent', async () => {
    const name = `it-foreign-${suffix}`
    const m = manifest('knative', name, { image: await modelImage('1') })
    const foreign = structuredClone(m) as KubeObject
    foreign.metadata!.labels = { 'app.kubernetes.io/managed-by': 'helm' }
    await admin.kube.apply(foreign, { takeOver: true })
    await expect(deployer.apply(m)).rejects.toThrow(
      `Service ${NS}/${name} exists but is not managed by mlflow-k8s-deploy (label app.kubernetes.io/managed-by=helm); refusing to update it`,
    )
    await expect(deployer.remove({ target: 'knative', namespace: NS, name }, { timeoutMs: 30_000 })).rejects.toThrow(
      /refusing to delete it/,
    )
  })
})

describe('delete', () => {
  test(
    'removes what the action created and is idempotent',
    async () => {
      const name = `it-del-${suffix}`
      await deployer.apply(manifest('knative', name, { image: await modelImage('1') }))
      expect(await deployer.remove({ target: 'knative', namespace: NS, name }, { timeoutMs: 60_000 })).toMatchObject({
        removed: true,
      })
      expect(await deployer.remove({ target: 'knative', namespace: NS, name }, { timeoutMs: 60_000 })).toEqual({
        removed: false,
        waitedMs: 0,
      })
      expect(await deployer.kube.get(KNATIVE_SERVICE, NS, name)).toBeUndefined()
    },
    LONG,
  )
})
