// KServe Standard (RawDeployment) mode decisions, from tables: the mode, and hand-made snapshots
// for edges the rig cannot provoke on demand. The recorded snapshots of the real controller are
// judged in readiness.test.ts.
import type { Expectation, KubeObject } from '../../../src/k8s/readiness.js'
import { changesPodMetadata, expectationFor } from '../../../src/k8s/rollout.js'
import {
  configDefaultMode,
  deploymentModeOf,
  normalizeMode,
  predictorAddress,
  standardReadiness,
  type PredictorSnapshot,
} from '../../../src/k8s/standard.js'
import { podFailure } from '../../../src/k8s/pods.js'

const isvcOf = (annotations: Record<string, string> | undefined, deploymentMode?: string): KubeObject => ({
  apiVersion: 'serving.kserve.io/v1beta1',
  kind: 'InferenceService',
  metadata: { name: 'wine', namespace: 'models', ...(annotations ? { annotations } : {}) },
  ...(deploymentMode ? { status: { deploymentMode } } : {}),
})
const configMap = (deploy: string | undefined): KubeObject =>
  ({ metadata: { name: 'inferenceservice-config' }, data: deploy === undefined ? {} : { deploy } }) as KubeObject

describe('deployment mode', () => {
  test.each([
    ['Standard', 'Standard'],
    ['RawDeployment', 'Standard'],
    ['Knative', 'Knative'],
    ['Serverless', 'Knative'],
    ['ModelMesh', 'ModelMesh'],
    ['raw', undefined],
    [undefined, undefined],
  ])('%s → %s', (value, mode) => expect(normalizeMode(value)).toBe(mode))

  test.each([
    ['the config as KServe v0.19 ships it', '{\n  "defaultDeploymentMode": "Serverless"\n}', 'Knative'],
    ['a Standard cluster', '{"defaultDeploymentMode": "Standard"}', 'Standard'],
    ['a legacy RawDeployment cluster', '{"defaultDeploymentMode": "RawDeployment"}', 'Standard'],
    ['not JSON', 'Standard', undefined],
    ['no deploy key', undefined, undefined],
  ])('cluster default: %s', (_t, deploy, mode) => expect(configDefaultMode(configMap(deploy))).toBe(mode))

  const raw = { 'serving.kserve.io/deploymentMode': 'RawDeployment' }
  const standard = { 'serving.kserve.io/deploymentMode': 'Standard' }
  test.each<[string, KubeObject | undefined, KubeObject, 'Standard' | 'Knative' | undefined, string]>([
    ['annotation RawDeployment', undefined, isvcOf(raw), 'Knative', 'Standard'],
    ['annotation Standard', undefined, isvcOf(standard), undefined, 'Standard'],
    ['no annotation: the cluster default', undefined, isvcOf(undefined), 'Standard', 'Standard'],
    ['no annotation, default unreadable: KServe’s shipped default', undefined, isvcOf(undefined), undefined, 'Knative'],
    // KServe refuses to change the mode of an existing object: its status wins.
    ['existing object recorded Standard', isvcOf(undefined, 'RawDeployment'), isvcOf(undefined), 'Knative', 'Standard'],
    [
      'existing Knative object, annotation says raw',
      isvcOf(undefined, 'Serverless'),
      isvcOf(raw),
      'Standard',
      'Knative',
    ],
  ])('%s', (_t, existing, manifest, clusterDefault, mode) =>
    expect(deploymentModeOf(existing, manifest, clusterDefault)).toBe(mode),
  )
})

const update = (previousDeploymentGeneration: number): Expectation => ({
  generation: 2,
  newRevision: true,
  standard: { previousDeploymentGeneration },
})

// Hand-made snapshots in the shapes KServe v0.19 and the Deployment controller write.
const cond = (type: string, status: string, reason?: string, message?: string) => ({
  type,
  status,
  ...(reason ? { reason } : {}),
  ...(message ? { message } : {}),
})
function snapshot(o: {
  generation?: number
  observed?: number
  replicas?: number
  updated?: number
  total?: number
  available?: number
  reported?: number
  ready?: string
  progressing?: ReturnType<typeof cond>
  waiting?: { reason: string; message?: string }
  isvcStatus?: Record<string, unknown>
}): PredictorSnapshot {
  const generation = o.generation ?? 2
  const rs = {
    metadata: {
      name: 'wine-predictor-7c9d',
      uid: 'rs-2',
      annotations: { 'deployment.kubernetes.io/revision': '2' },
    },
  }
  return {
    isvc: {
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata: { name: 'wine', namespace: 'models', generation: 2 },
      status: o.isvcStatus ?? {
        deploymentMode: 'Standard',
        observedGeneration: o.reported ?? generation,
        url: 'http://wine-models.rig.test',
        conditions: [
          cond('IngressReady', 'True'),
          cond('PredictorReady', o.ready ?? 'True'),
          cond('Ready', o.ready ?? 'True'),
        ],
      },
    },
    deployment: {
      metadata: {
        name: 'wine-predictor',
        generation,
        annotations: { 'deployment.kubernetes.io/revision': '2' },
      },
      spec: { replicas: o.replicas ?? 1 },
      status: {
        observedGeneration: o.observed ?? generation,
        replicas: o.total ?? 1,
        updatedReplicas: o.updated ?? 1,
        availableReplicas: o.available ?? 1,
        conditions: [cond('Available', 'True'), o.progressing ?? cond('Progressing', 'True', 'NewReplicaSetAvailable')],
      },
    },
    replicaSets: [
      rs,
      {
        metadata: {
          name: 'wine-predictor-5b8f',
          uid: 'rs-1',
          annotations: { 'deployment.kubernetes.io/revision': '1' },
        },
      },
    ],
    pods: [
      {
        metadata: { name: 'wine-predictor-5b8f-aaaaa', ownerReferences: [{ uid: 'rs-1' }] },
        status: { containerStatuses: [{ name: 'kserve-container', ready: true, state: { running: {} } }] },
      },
      {
        metadata: { name: 'wine-predictor-7c9d-bbbbb', ownerReferences: [{ uid: 'rs-2' }] },
        status: {
          containerStatuses: [
            { name: 'kserve-container', ready: false, state: o.waiting ? { waiting: o.waiting } : { running: {} } },
          ],
        },
      },
    ],
  }
}

describe('Standard-mode readiness, edges', () => {
  test.each<[string, PredictorSnapshot, Expectation, string, string]>([
    [
      'KServe has not touched the Deployment yet',
      snapshot({ generation: 1 }),
      update(1),
      'pending',
      'update Deployment',
    ],
    ['Deployment controller behind', snapshot({ observed: 1 }), update(1), 'pending', 'has not observed generation 2'],
    ['new pod not created', snapshot({ updated: 0, total: 1 }), update(1), 'pending', '0 of 1 new pods created'],
    ['old pod still running', snapshot({ total: 2 }), update(1), 'pending', '1 old pods still running'],
    ['new pod not available', snapshot({ available: 0 }), update(1), 'pending', '0 of 1 new pods available'],
    [
      'isvc status from an older Deployment',
      snapshot({ reported: 1 }),
      update(1),
      'pending',
      'report Deployment generation 2',
    ],
    ['isvc not Ready', snapshot({ ready: 'Unknown' }), update(1), 'pending', 'Ready=Unknown'],
    [
      'progress deadline',
      snapshot({
        updated: 1,
        available: 0,
        progressing: cond(
          'Progressing',
          'False',
          'ProgressDeadlineExceeded',
          'ReplicaSet "wine-predictor-7c9d" has timed out progressing.',
        ),
      }),
      update(1),
      'failed',
      'ProgressDeadlineExceeded: ReplicaSet',
    ],
    [
      'ErrImagePull is retried before it counts',
      snapshot({ available: 0, waiting: { reason: 'ErrImagePull', message: 'failed to pull' } }),
      update(1),
      'pending',
      '0 of 1 new pods available',
    ],
    ['everything rolled out', snapshot({}), update(1), 'ready', ''],
    [
      'a change that makes no new pods: no wait for the Deployment',
      snapshot({ generation: 1 }),
      { ...update(1), newRevision: false },
      'ready',
      '',
    ],
  ])('%s', (_t, snap, expect_, state, detail) => {
    const r = standardReadiness(snap, expect_)
    expect(r.state).toBe(state)
    const text = r.state === 'failed' ? `${r.reason}: ${r.message}` : r.state === 'pending' ? r.detail : 'ready'
    if (detail) expect(text).toContain(detail)
  })

  test('a failing pod of the old ReplicaSet does not fail the new rollout', () => {
    const snap = snapshot({ total: 2 })
    const old = snap.pods[0]!
    ;(old.status as Record<string, unknown>)['containerStatuses'] = [
      { name: 'kserve-container', state: { waiting: { reason: 'CrashLoopBackOff' } } },
    ]
    expect(standardReadiness(snap, update(1))).toMatchObject({ state: 'pending' })
  })

  test('an unusable spec seen before the apply is stale until KServe updates the Deployment', () => {
    const invalid = {
      deploymentMode: 'Standard',
      modelStatus: {
        transitionStatus: 'InvalidSpec',
        lastFailureInfo: {
          reason: 'NoSupportingRuntime',
          message: 'No runtime found to support specified framework/version',
        },
      },
      conditions: [cond('PredictorReady', 'False', 'NoSupportingRuntime'), cond('Ready', 'False')],
    }
    const before = snapshot({ generation: 1, isvcStatus: invalid })
    const expect_ = expectationFor(before.isvc, before.isvc, { previousDeploymentGeneration: 1 })
    expect(standardReadiness(before, { ...expect_, newRevision: true }).state).toBe('pending')
    expect(
      standardReadiness(snapshot({ generation: 2, isvcStatus: invalid }), { ...expect_, newRevision: true }),
    ).toMatchObject({ state: 'failed', reason: 'NoSupportingRuntime' })
  })

  test('a load failure KServe took from an old pod does not fail the rollout', () => {
    // What the rig showed right after rolling back a failed download: the old ReplicaSet serves
    // again, the failed pod is terminating, KServe still says FailedToLoad.
    const snap = snapshot({})
    const status = snap.isvc.status as Record<string, unknown>
    status['modelStatus'] = {
      transitionStatus: 'BlockedByFailedLoad',
      states: { activeModelState: 'Loaded', targetModelState: 'FailedToLoad' },
      lastFailureInfo: { reason: 'ModelLoadFailed', message: 'No model found', exitCode: 1 },
    }
    expect(standardReadiness(snap, update(1)).state).toBe('ready')
  })
})

describe('pods and addresses', () => {
  test('CrashLoopBackOff is worded with the exit code and the termination message', () => {
    expect(
      podFailure([
        {
          metadata: { name: 'p' },
          status: {
            initContainerStatuses: [
              {
                name: 'storage-initializer',
                state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container' } },
                lastState: { terminated: { exitCode: 1, reason: 'Error', message: 'RuntimeError: no such key\n' } },
              },
            ],
          },
        },
      ]),
    ).toEqual({
      reason: 'CrashLoopBackOff',
      message: 'pod p container storage-initializer: exited with code 1: RuntimeError: no such key',
    })
  })

  test.each<[string, KubeObject | undefined, KubeObject[], string | undefined]>([
    ['ClusterIP Service', { spec: { clusterIP: '10.0.0.17', ports: [{ port: 80 }] } }, [], 'http://10.0.0.17:80'],
    [
      'headless Service: a ready pod',
      { spec: { clusterIP: 'None', ports: [{ port: 8080 }] } },
      [{ status: { podIP: '10.244.0.9', conditions: [cond('Ready', 'True')] } }],
      'http://10.244.0.9:8080',
    ],
    ['nothing reachable', undefined, [], undefined],
  ])('%s', (_t, service, pods, address) => expect(predictorAddress(service, pods)).toBe(address))
})

describe('Standard mode: what rolls new pods', () => {
  const isvc = (annotations: Record<string, string>, labels: Record<string, string> = {}): KubeObject => ({
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: 'wine', namespace: 'models', generation: 1, annotations, labels },
    spec: { predictor: { model: { storageUri: 's3://b/1' } } },
  })
  test.each<[string, KubeObject, KubeObject, boolean]>([
    ['same metadata', isvc({ a: '1' }), isvc({ a: '1' }), false],
    [
      'a provenance annotation changes',
      isvc({ 'mlflow-k8s-deploy/git-sha': 'a' }),
      isvc({ 'mlflow-k8s-deploy/git-sha': 'b' }),
      true,
    ],
    ['a label changes', isvc({}, { team: 'a' }), isvc({}, { team: 'b' }), true],
    [
      'only what KServe keeps off the pods',
      isvc({ 'kubectl.kubernetes.io/last-applied-configuration': 'x' }),
      isvc({}),
      false,
    ],
  ])('%s', (_t, before, after, rolls) => {
    expect(changesPodMetadata(before, after)).toBe(rolls)
    // Knative mode (no Standard expectation) only looks at the predictor.
    expect(expectationFor(before, after).newRevision).toBe(false)
    expect(expectationFor(before, after, {}).newRevision).toBe(rolls)
  })
})
