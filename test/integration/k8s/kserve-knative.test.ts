// KServe's Knative (formerly Serverless) mode on the rig's real Knative Serving: the predictor is
// a Knative Service, revisions and routes are Knative's, and requests reach it through Envoy by
// Host. An update at canaryTrafficPercent 20 is verified by counting which model answers.
import { RolloutError, ServingCluster, type Deployment } from '../../../src/k8s/index.js'
import { smokeTestDeployment } from '../../../src/pipeline/smoke-test.js'
import { KNATIVE_SERVICE } from '../../../src/k8s/kube.js'
import { servingStatus } from '../../../src/k8s/readiness.js'
import type { Shape } from '../../../src/k8s/render.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'
import { ingressAddress, predict, pyfuncPrediction } from '../action/run-action.js'
import { applyAndWait, fixtureModel, modelImage, wineManifest, withLyingSignature } from './fixtures.js'
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
  return smokeTestDeployment(
    { cluster: deployer, log },
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
      const first = await applyAndWait(
        deployer,
        manifest('kserve-container', name, { image: await modelImage('1'), version: '1' }),
        { timeoutMs: TIMEOUT, progressDeadlineS: 336 },
      )
      // Without Istio's VirtualService (disableIstioVirtualHost), the isvc's URL is its predictor's.
      expect(first.url).toBe(`http://${name}-predictor.${NS}.${rigEnv('KNATIVE_DOMAIN')}`)
      expect(first.directUrl).toBeUndefined()
      expect(first.revision).toBe(`${name}-predictor-00001`)
      const isvc = await deployer.kube.get(first.applied.kind, NS, name)
      expect(isvc?.status?.['deploymentMode']).toBe('Knative')
      const ksvc = await as('ADMIN').kube.get(KNATIVE_SERVICE, NS, `${name}-predictor`)
      expect(ksvc?.status?.['latestReadyRevisionName']).toBe(`${name}-predictor-00001`)
      // The isvc's progress-deadline annotation reaches the predictor's revisions: Knative gives up
      // on a revision when the action does.
      const template = ksvc?.spec?.['template'] as { metadata?: { annotations?: Record<string, string> } }
      expect(template.metadata?.annotations?.['serving.knative.dev/progress-deadline']).toBe('336s')
      const s1 = await smoke(first, '1')
      expect(s1.sample).toEqual(await pyfuncPredictions((await fixtureModel('1')).dir))
      expect(await predict(first.url!, name)).toEqual(pyfuncPrediction('1'))

      const canary = await applyAndWait(
        deployer,
        manifest('kserve-container', name, { image: await modelImage('2'), version: '2' }),
        { timeoutMs: TIMEOUT, trafficPercent: 20 },
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
      // The smoke test of the canary goes to its own URL: v2 answers, never the 80 % revision.
      expect(canary.smokeUrl).toBe(latest)
      const s2 = await smoke(canary, '2')
      expect(s2.sample).toEqual(await pyfuncPredictions((await fixtureModel('2')).dir))
    },
    LONG,
  )

  test(
    'an unpullable update fails fast; canaryTrafficPercent 0 keeps the rolled-out revision serving, no new revision',
    async () => {
      const promoted = await applyAndWait(
        deployer,
        manifest('kserve-container', name, { image: await modelImage('2'), version: '2' }),
        { timeoutMs: TIMEOUT },
      )
      const good = `${name}-predictor-00002`
      expect(promoted.traffic.map((t) => [t.revision, t.percent])).toEqual([[good, 100]])
      const missing = `${rigEnv('REGISTRY')}/it-k8s-no-such-image@sha256:${'0'.repeat(64)}`
      const applied = await deployer.apply(manifest('kserve-container', name, { image: missing, version: '3' }))
      const failed = `${name}-predictor-00003`
      const { err, answers, ms } = await whileServing(promoted.url!, () =>
        deployer.waitReady(applied, { timeoutMs: TIMEOUT }),
      )
      console.log(`KServe Knative, unpullable update: rolled back after ${ms} ms; ${answers.length} requests`)
      expect(answers.length).toBeGreaterThan(0)
      expect(answers.every((a) => a === JSON.stringify(pyfuncPrediction('2')))).toBe(true)
      expect(err.outcome).toBe('rolled-back')
      expect(err.message).toMatch(
        new RegExp(
          `failed: (ErrImagePull|ImagePullBackOff): revision ${failed} cannot start: pod ${failed}-deployment-\\S+ container kserve-container: .*not found.*; ` +
            `rolled back: canaryTrafficPercent 0: revision ${good} \\(model wine-classifier version 2\\) takes all traffic; revision ${good} serves; the failed revision ${failed} is left unrouted`,
        ),
      )
      expect(err.found).toEqual({ serving: { url: promoted.url, revision: good }, failedRevision: failed })
      const isvc = await deployer.kube.get(applied.kind, NS, name)
      expect(servingStatus(isvc!).latestCreatedRevision).toBe(failed)
      expect(
        servingStatus(isvc!)
          .traffic.filter((t) => t.percent)
          .map((t) => [t.revision, t.percent]),
      ).toEqual([[good, 100]])
    },
    LONG,
  )

  test(
    'a smoke test that fails after the update went live: back to the revision rolled out before it',
    async () => {
      const good = `${name}-predictor-00002`
      const live = await applyAndWait(
        deployer,
        manifest('kserve-container', name, { image: await modelImage('1'), version: '1' }),
        { timeoutMs: TIMEOUT },
      )
      const bad = `${name}-predictor-00004`
      expect(live.traffic.map((t) => [t.revision, t.percent])).toEqual([[bad, 100]])
      const model = await fixtureModel('1')
      const lying = withLyingSignature(model)
      const err = (await smokeTestDeployment(
        { cluster: deployer, log },
        live,
        { signature: lying.signature, example: model.example },
        { timeoutMs: 120_000, ingress: { address: ingressAddress() } },
      ).catch((e: unknown) => e)) as RolloutError
      expect(err).toBeInstanceOf(RolloutError)
      expect(err.message).toMatch(
        new RegExp(
          `the signature promises \\[-1,3\\]; rolled back: canaryTrafficPercent 0: revision ${good} takes all traffic; revision ${good} serves; the failed revision ${bad} is left unrouted`,
        ),
      )
      // The rollback waited for the route too (PredictorRouteReady): the first request gets v2.
      expect(await predict(live.url!, name)).toEqual(pyfuncPrediction('2'))
    },
    LONG,
  )
  test(
    "an update that crash-loops fails fast with the container's message; traffic stays on the rolled-out revision",
    async () => {
      const good = `${name}-predictor-00002`
      const m = manifest('kserve-container', name, { image: await modelImage('1'), version: '5' })
      const c = (m.spec as { predictor: { containers: Record<string, unknown>[] } }).predictor.containers[0]!
      c['command'] = ['/bin/sh', '-c', 'echo "model exploded" >&2; exit 3']
      // As the action applies: the revision a rollback left parked (latest ready, serving nothing)
      // must not take the traffic while the new one starts, so the new one is staged at 0 %.
      const applied = await deployer.apply(m, { stage: true })
      expect(applied.final).toEqual({ trafficPercent: undefined, tag: undefined })
      const { err, answers, ms } = await whileServing(
        `http://${name}-predictor.${NS}.${rigEnv('KNATIVE_DOMAIN')}`,
        () => deployer.waitReady(applied, { timeoutMs: TIMEOUT }),
      )
      console.log(`KServe Knative, crash-looping update: rolled back after ${ms} ms; ${answers.length} requests`)
      expect(answers.every((a) => a === JSON.stringify(pyfuncPrediction('2')))).toBe(true)
      expect(err.outcome).toBe('rolled-back')
      expect(err.message).toMatch(
        new RegExp(
          // Knative's RevisionFailed ("Container failed with: …") or the pods' CrashLoopBackOff, whichever is read first.
          `failed: (RevisionFailed|CrashLoopBackOff): .*model exploded[\\s\\S]*; rolled back: canaryTrafficPercent 0: revision ${good} takes all traffic`,
        ),
      )
      expect(err.found.serving?.revision).toBe(good)
    },
    LONG,
  )
})

/** Runs `rollout` (which must fail) while polling `url` with bounded requests; every answer is recorded. */
async function whileServing(url: string, rollout: () => Promise<unknown>) {
  const answers: string[] = []
  let settled = false
  const name = new URL(url).hostname.split('.')[0]!.replace(/-predictor$/, '')
  const polling = (async () => {
    while (!settled) {
      answers.push(JSON.stringify(await predict(url, name).catch((e: unknown) => String(e))))
      await new Promise((r) => setTimeout(r, 200))
    }
  })()
  const started = Date.now()
  const err = (await rollout()
    .catch((e: unknown) => e)
    .finally(() => (settled = true))) as RolloutError
  await polling
  return { err, answers, ms: Date.now() - started }
}

describe('KServe Knative mode, MLflow runtime', () => {
  test(
    'storageUri on S3, the kserve-mlserver runtime as a Knative revision, answering like pyfunc',
    async () => {
      const name = `kk-m-${suffix}`
      const d = await applyAndWait(
        deployer,
        manifest('kserve-mlflow', name, { storageUri: await storageUriOfVersion('1'), version: '1' }),
        { timeoutMs: TIMEOUT },
      )
      expect(d.revision).toBe(`${name}-predictor-00001`)
      const s = await smoke(d, '1')
      expect(s.sample).toEqual(await pyfuncPredictions((await fixtureModel('1')).dir))
    },
    LONG,
  )
})
