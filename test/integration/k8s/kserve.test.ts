// KServe Standard mode (RawDeployment) against the real controller: KServe v0.20.0's manager and
// webhooks on the rig's kube-apiserver, pods on the rig's node (containerd), the storage
// initializer reading s3:// from the rig's S3 over MLflow's artifact store. Every deploy answers
// with the predictions MLflow pyfunc gives for the deployed version; the pods are the API's.
import { ServingCluster, RolloutError, type Deployment } from '../../../src/k8s/index.js'
import { smokeTestDeployment } from '../../../src/pipeline/smoke-test.js'
import { DEPLOYMENT } from '../../../src/k8s/kube.js'
import type { Shape } from '../../../src/k8s/render.js'
import type { KubeObject } from '../../../src/k8s/readiness.js'
import { predictorName, standardReadiness, type PredictorSnapshot } from '../../../src/k8s/standard.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'
import { ingressAddress } from '../action/run-action.js'
import {
  applyAndWait,
  fixtureModel,
  modelImage,
  wineManifest,
  withLyingSignature,
  type FixtureModel,
} from './fixtures.js'
import {
  predictorPods,
  putModel,
  pyfuncPredictions,
  record,
  serviceUrl,
  storageUriOfVersion,
} from './kserve-helpers.js'

const NS = 'deploy'
const suffix = Date.now().toString(36).slice(-5)
const TIMEOUT = 600_000
const LONG = 1_200_000
const MODE = 'serving.kserve.io/deploymentMode'

const log = new MemoryLogger()
const as = (who: 'ADMIN' | 'DEPLOYER') =>
  ServingCluster.connect({ kubeconfig: { path: rigEnv(`KUBECONFIG_${who}`) }, kubeContext: undefined }, log)
let deployer: ServingCluster
let admin: ServingCluster
const created = new Set<string>()

beforeAll(() => {
  deployer = as('DEPLOYER')
  admin = as('ADMIN')
})

afterAll(async () => {
  for (const name of created) {
    await admin
      .remove({ target: 'kserve', namespace: NS, name }, { timeoutMs: 120_000, takeOver: true })
      .catch((e) => console.warn(`cleanup ${name}: ${e}`))
  }
})

function manifest(
  shape: Shape,
  name: string,
  mode: 'Standard' | 'RawDeployment',
  values: { image?: string; storageUri?: string; version?: string },
) {
  created.add(name)
  return wineManifest(shape, name, values, { namespace: NS, annotations: { [MODE]: mode } })
}

/** The smoke test through the predictor Service; its sample must be pyfunc's answer. */
async function answersLike(d: Deployment, model: FixtureModel): Promise<void> {
  const s = await smokeTestDeployment(
    { cluster: deployer, log },
    d,
    { signature: model.signature, example: model.example },
    { timeoutMs: 120_000 },
  )
  expect(s.sample).toEqual(await pyfuncPredictions(model.dir))
}

/** Real pods on the rig's node, running, all of the Deployment's current ReplicaSet. */
async function expectPods(name: string, revision: string | undefined): Promise<KubeObject[]> {
  // A pod of a replaced ReplicaSet may still be terminating: it serves no more.
  const pods = (await predictorPods(deployer.kube, NS, name)).filter((p) => !p.metadata?.['deletionTimestamp'])
  expect(pods.length).toBeGreaterThan(0)
  for (const p of pods) {
    expect((p.spec as { nodeName?: string }).nodeName).toBe(rigEnv('NODE_NAME'))
    expect(p.status?.['podIP']).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
    expect(p.metadata?.name?.startsWith(`${revision}-`)).toBe(true)
  }
  return pods
}

const rolling = (before: number) => (s: PredictorSnapshot) => {
  const d = s.deployment
  const st = (d?.status ?? {}) as Record<string, number>
  return (d?.metadata?.generation ?? 0) > before && (st['replicas'] ?? 0) > (st['updatedReplicas'] ?? 0)
}
/** A snapshot in which the new pods (or KServe) show a terminal failure, as the action judges it. */
const failed = (before: number) => (s: PredictorSnapshot) =>
  standardReadiness(s, { generation: 0, newRevision: true, standard: { previousDeploymentGeneration: before } })
    .state === 'failed'
const generationOf = async (name: string) =>
  (await deployer.kube.read(DEPLOYMENT, NS, predictorName(name)))?.metadata?.generation ?? 0

/** Polls the old pods through the Service until the rollback has finished; every answer must be 200. */
function keepAsking(url: string, name: string) {
  const answers: number[] = []
  let stop = false
  const done = (async () => {
    while (!stop) {
      const res = await fetch(`${url}/v2/models/${name}/ready`, { signal: AbortSignal.timeout(5_000) }).catch(
        () => undefined,
      )
      answers.push(res?.status ?? 0)
      await new Promise((r) => setTimeout(r, 300))
    }
  })()
  return {
    answers,
    stop: async () => {
      stop = true
      await done
    },
  }
}

/**
 * Applies an update that must fail, recording the snapshot that shows it; the old
 * pods must answer through the Service until the rollback is done. Returns the rollback's error.
 */
async function failingUpdate(
  name: string,
  update: KubeObject,
  oldUrl: string,
  fixture: string,
  note: string,
): Promise<RolloutError> {
  const before = await generationOf(name)
  const applied = await deployer.apply(update)
  const asking = keepAsking(oldUrl, name)
  let err: unknown
  try {
    ;[err] = await Promise.all([
      deployer.waitReady(applied, { timeoutMs: TIMEOUT }).catch((e: unknown) => e),
      record(deployer.kube, NS, name, fixture, note, before, failed(before)),
    ])
  } finally {
    await asking.stop()
  }
  expect(err).toBeInstanceOf(RolloutError)
  expect((err as RolloutError).outcome).toBe('rolled-back')
  expect(asking.answers.length).toBeGreaterThan(0)
  expect(asking.answers.every((s) => s === 200)).toBe(true)
  return err as RolloutError
}

describe('KServe Standard mode, custom container (annotation Standard)', () => {
  const name = `ks-c-${suffix}`
  let v1: FixtureModel
  let first: Deployment

  test(
    'deploys onto pods the API lists; the predictor Service answers with pyfunc’s predictions',
    async () => {
      v1 = await fixtureModel('1')
      const applied = await deployer.apply(
        manifest('kserve-container', name, 'Standard', { image: await modelImage('1') }),
      )
      ;[first] = await Promise.all([
        deployer.waitReady(applied, { timeoutMs: TIMEOUT }),
        record(
          deployer.kube,
          NS,
          name,
          'first-deploy-starting',
          'custom container, first deploy, pod starting',
          undefined,
          (s) =>
            Boolean(
              s.deployment &&
              s.pods.length > 0 &&
              !(s.deployment.status as { availableReplicas?: number }).availableReplicas,
            ),
        ),
      ])
      await record(deployer.kube, NS, name, 'first-deploy-ready', 'custom container, first deploy, Ready')
      console.log(`kserve standard, custom container: apply to Ready ${Math.round(first.waitedMs)} ms`)
      expect(first).toMatchObject({ kind: 'InferenceService', created: true })
      expect(first.revision).toMatch(new RegExp(`^${name}-predictor-[a-z0-9]+$`))
      expect(first.url).toBe(`http://${name}-${NS}.rig.test`)
      expect(first.smokeUrl).toBe(first.url)
      expect(first.directUrl).toBe(await serviceUrl(deployer.kube, NS, name))
      await expectPods(name, first.revision)
      await answersLike(first, v1)
      // KServe's HTTPRoute on the rig's Gateway: Envoy routes the isvc's host to the predictor.
      const viaIngress = await smokeTestDeployment(
        { cluster: deployer, log },
        first,
        { signature: v1.signature, example: v1.example },
        { timeoutMs: 120_000, ingress: { address: ingressAddress() } },
      )
      expect(viaIngress.sample).toEqual(await pyfuncPredictions(v1.dir))
      const isvc = await deployer.kube.get(first.applied.kind, NS, name)
      expect(isvc?.status?.['deploymentMode']).toBe('Standard')
    },
    LONG,
  )

  test(
    'an update whose image cannot be pulled is rolled back; the old pods answered throughout',
    async () => {
      const missing = `${rigEnv('REGISTRY')}/it-k8s-no-such-image@sha256:${'0'.repeat(64)}`
      const err = await failingUpdate(
        name,
        manifest('kserve-container', name, 'Standard', { image: missing, version: '3' }),
        first.directUrl!,
        'update-pull-failure',
        'custom container, update to an unpullable image',
      )
      expect(err.message).toMatch(
        /failed: (ErrImagePull|ImagePullBackOff): pod .* container kserve-container: .*rolled back: the previous spec applied again \(model wine-classifier version 1\)/,
      )
      await expectPods(name, first.revision)
      await answersLike(first, v1)
    },
    LONG,
  )

  test(
    'an update that crash-loops is rolled back',
    async () => {
      const m = manifest('kserve-container', name, 'Standard', { image: await modelImage('1'), version: '4' })
      const c = (m.spec as { predictor: { containers: Record<string, unknown>[] } }).predictor.containers[0]!
      c['command'] = ['/bin/sh', '-c', 'echo "model exploded" >&2; exit 3']
      const err = await failingUpdate(
        name,
        m,
        first.directUrl!,
        'update-crash-loop',
        'custom container, update whose container exits 3',
      )
      expect(err.message).toMatch(/failed: CrashLoopBackOff: pod .* container kserve-container: exited with code 3/)
      await expectPods(name, first.revision)
      await answersLike(first, v1)
    },
    LONG,
  )
})

describe('KServe Standard mode, MLflow runtime (annotation RawDeployment, storageUri on S3)', () => {
  const name = `ks-m-${suffix}`
  let v2: FixtureModel
  let second: Deployment

  test(
    'v1 then v2: the storage initializer downloads each; new pods serve v2 with pyfunc’s predictions',
    async () => {
      const [v1, v2_] = await Promise.all([fixtureModel('1'), fixtureModel('2')])
      v2 = v2_
      const d1 = await applyAndWait(
        deployer,
        manifest('kserve-mlflow', name, 'RawDeployment', { storageUri: await storageUriOfVersion('1') }),
        { timeoutMs: TIMEOUT },
      )
      const pods = await expectPods(name, d1.revision)
      const init = (
        pods[0]!.status?.['initContainerStatuses'] as { name: string; state: { terminated?: { reason: string } } }[]
      )[0]!
      expect(init).toMatchObject({ name: 'storage-initializer', state: { terminated: { reason: 'Completed' } } })
      await answersLike(d1, v1)
      // The webhook stores the legacy spelling as the current one.
      const stored = await deployer.kube.get(d1.applied.kind, NS, name)
      expect(stored?.metadata?.annotations?.[MODE]).toBe('Standard')

      const before = await generationOf(name)
      const applied = await deployer.apply(
        manifest('kserve-mlflow', name, 'RawDeployment', { storageUri: await storageUriOfVersion('2'), version: '2' }),
      )
      ;[second] = await Promise.all([
        deployer.waitReady(applied, { timeoutMs: TIMEOUT }),
        record(
          deployer.kube,
          NS,
          name,
          'update-rolling',
          'MLflow runtime, v1 → v2, new pod starting beside the old',
          before,
          rolling(before),
        ),
      ])
      await record(deployer.kube, NS, name, 'update-ready', 'MLflow runtime, v2 rolled out', before)
      console.log(
        `kserve standard, MLflow runtime: v1 apply to Ready ${Math.round(d1.waitedMs)} ms, v1 → v2 ${Math.round(second.waitedMs)} ms`,
      )
      expect(second.revision).not.toBe(d1.revision)
      await expectPods(name, second.revision)
      await answersLike(second, v2)
    },
    LONG,
  )

  test(
    'an update whose model cannot be downloaded fails in the storage initializer and is rolled back',
    async () => {
      const err = await failingUpdate(
        name,
        manifest('kserve-mlflow', name, 'RawDeployment', {
          storageUri: `s3://mlflow-artifacts/it-missing-${suffix}`,
          version: '5',
        }),
        second.directUrl!,
        'update-model-load-failure',
        'MLflow runtime, update to a storageUri with nothing there',
      )
      // KServe itself reports this one (modelStatus.lastFailureInfo from the init container), often
      // before the pod reaches CrashLoopBackOff.
      expect(err.message).toMatch(
        /failed: (ModelLoadFailed|CrashLoopBackOff): [\s\S]*(No model found in it-missing-|container storage-initializer)/,
      )
      await expectPods(name, second.revision)
      await answersLike(second, v2)
    },
    LONG,
  )

  test(
    'an update whose smoke test fails (outputs not as promised) is rolled back to v2',
    async () => {
      const lying = withLyingSignature(v2)
      const d = await applyAndWait(
        deployer,
        manifest('kserve-mlflow', name, 'RawDeployment', {
          storageUri: await putModel(lying.dir, `it-lying-${suffix}`),
          version: '9',
        }),
        { timeoutMs: TIMEOUT },
      )
      const err = (await smokeTestDeployment(
        { cluster: deployer, log },
        d,
        { signature: lying.signature, example: lying.example },
        { timeoutMs: TIMEOUT },
      ).catch((e: unknown) => e)) as RolloutError
      expect(err).toBeInstanceOf(RolloutError)
      expect(err.message).toMatch(
        /output output-1 has shape \[3,1\], the signature promises \[-1,3\]; rolled back: the previous spec applied again \(model wine-classifier version 2\); revision .*-predictor-\w+ serves/,
      )
      const now = await deployer.kube.get(d.applied.kind, NS, name)
      expect((now?.spec as { predictor: { model: { storageUri: string } } }).predictor.model.storageUri).toBe(
        await storageUriOfVersion('2'),
      )
      await answersLike({ ...second, directUrl: await serviceUrl(deployer.kube, NS, name) }, v2)
    },
    LONG,
  )
})
