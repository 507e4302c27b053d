// KServe's Knative (formerly Serverless) mode on the rig's real Knative Serving: the predictor is
// a Knative Service, revisions and routes are Knative's, and requests reach it through Envoy by
// Host. An update at canaryTrafficPercent 20 is verified by counting which model answers.
import { ServingCluster, type Deployment } from '../../../src/k8s/index.js'
import { KNATIVE_SERVICE } from '../../../src/k8s/kube.js'
import { servingStatus } from '../../../src/k8s/readiness.js'
import type { Shape } from '../../../src/k8s/render.js'
import { MemoryLogger } from '../../../src/util/logger.js'
import { rigEnv } from '../rig-env.js'
import { ingressAddress, predict, pyfuncPrediction } from '../action/run-action.js'
import { fixtureModel, modelImage, wineManifest } from './fixtures.js'
import { pyfuncPredictions, storageUriOfVersion } from './kserve-helpers.js'

const NS = 'deploy'
const suffix = Date.now().toString(36).slice(-5)
const TIMEOUT = 420_000
const LONG = 900_000

const log = new MemoryLogger()
const as = (who: 'ADMIN' | 'DEPLOYER') =>
  ServingCluster.connect({ kubeconfig: { path: rigEnv(`KUBECONFIG_${who}`) }, kubeContext: undefined }, log)
let deployer: ServingCluster
const created = new Set<string>()

beforeAll(() => {
  deployer = as('DEPLOYER')
})

afterAll(async () => {
  const admin = as('ADMIN')
  for (const name of created) {
    await admin
      .remove({ target: 'kserve', namespace: NS, name }, { timeoutMs: 120_000, takeOver: true })
      .catch((e) => console.warn(`cleanup ${name}: ${e}`))
  }
})

function manifest(shape: Shape, name: string, values: { image?: string; storageUri?: string; version: string }) {
  created.add(name)
  return wineManifest(shape, name, values, {
    namespace: NS,
    // Tag routing: KServe tags the canary `latest` and the previous revision `prev`, each with its
    // own URL (without it, only `prev` gets one).
    annotations: { 'serving.kserve.io/deploymentMode': 'Knative', 'serving.kserve.io/enable-tag-routing': 'true' },
  })
}

const smoke = async (d: Deployment, version: string) => {
  const model = await fixtureModel(version)
  return deployer.smokeTest(
    d,
    { signature: model.signature, example: model.example },
    { timeoutMs: 120_000, ingress: { address: ingressAddress() } },
  )
}

describe('KServe Knative mode, custom container', () => {
  const name = `kk-c-${suffix}`

  test(
    'a predictor Knative Service behind Envoy; canary 20 %: about a fifth of 200 requests reach v2',
    async () => {
      const first = await deployer.applyAndWait(
        manifest('kserve-container', name, { image: await modelImage('1'), version: '1' }),
        { wait: true, timeoutMs: TIMEOUT },
      )
      // Without Istio's VirtualService (disableIstioVirtualHost), the isvc's URL is its predictor's.
      expect(first.url).toBe(`http://${name}-predictor.${NS}.${rigEnv('KNATIVE_DOMAIN')}`)
      expect(first.directUrl).toBeUndefined()
      expect(first.revision).toBe(`${name}-predictor-00001`)
      const isvc = await deployer.kube.get(first.applied.kind, NS, name)
      expect(isvc?.status?.['deploymentMode']).toBe('Knative')
      const ksvc = await as('ADMIN').kube.get(KNATIVE_SERVICE, NS, `${name}-predictor`)
      expect(ksvc?.status?.['latestReadyRevisionName']).toBe(`${name}-predictor-00001`)
      const s1 = await smoke(first, '1')
      expect(s1.sample).toEqual(await pyfuncPredictions((await fixtureModel('1')).dir))
      expect(await predict(first.url!, name)).toEqual(pyfuncPrediction('1'))

      const canary = await deployer.applyAndWait(
        manifest('kserve-container', name, { image: await modelImage('2'), version: '2' }),
        { wait: true, timeoutMs: TIMEOUT, trafficPercent: 20 },
      )
      expect(canary.revision).toBe(`${name}-predictor-00002`)
      expect(canary.traffic.map((t) => [t.revision, t.percent])).toEqual([
        [`${name}-predictor-00002`, 20],
        [`${name}-predictor-00001`, 80],
      ])
      const predictorKsvc = await as('ADMIN').kube.get(KNATIVE_SERVICE, NS, `${name}-predictor`)
      console.log(
        `KServe Knative canary: isvc traffic ${JSON.stringify(canary.traffic)}; predictor ksvc traffic ${JSON.stringify(predictorKsvc?.status?.['traffic'])}`,
      )
      const tagged = servingStatus(predictorKsvc!).traffic
      const v1 = JSON.stringify(pyfuncPrediction('1'))
      const v2 = JSON.stringify(pyfuncPrediction('2'))
      const counts = { v1: 0, v2: 0, other: 0 }
      for (let i = 0; i < 200; i++) {
        const answer = JSON.stringify(await predict(first.url!, name))
        if (answer === v2) counts.v2++
        else if (answer === v1) counts.v1++
        else counts.other++
      }
      console.log(`KServe Knative canary 20 %: ${JSON.stringify(counts)} of 200`)
      expect(counts.other).toBe(0)
      // Binomial(200, 0.2): mean 40, standard deviation 5.7.
      expect(counts.v2).toBeGreaterThanOrEqual(20)
      expect(counts.v2).toBeLessThanOrEqual(60)
      // KServe's tags: each revision has its own URL through the same ingress.
      const latest = tagged.find((t) => t.tag === 'latest')!.url!
      const prev = tagged.find((t) => t.tag === 'prev')!.url!
      expect(await predict(latest, name)).toEqual(pyfuncPrediction('2'))
      expect(await predict(prev, name)).toEqual(pyfuncPrediction('1'))
    },
    LONG,
  )
})

describe('KServe Knative mode, MLflow runtime', () => {
  test(
    'storageUri on S3, the kserve-mlserver runtime as a Knative revision, answering like pyfunc',
    async () => {
      const name = `kk-m-${suffix}`
      const d = await deployer.applyAndWait(
        manifest('kserve-mlflow', name, { storageUri: await storageUriOfVersion('1'), version: '1' }),
        { wait: true, timeoutMs: TIMEOUT },
      )
      expect(d.revision).toBe(`${name}-predictor-00001`)
      const s = await smoke(d, '1')
      expect(s.sample).toEqual(await pyfuncPredictions((await fixtureModel('1')).dir))
    },
    LONG,
  )
})
