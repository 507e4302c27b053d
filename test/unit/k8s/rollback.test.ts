// The rollback and deadline decisions, pure: how a failed update is undone, when a traffic switch
// is done, which failures the wait tolerates for a while, and how one timeout is shared.
import { podFailure } from '../../../src/k8s/pods.js'
import type { KubeObject, Readiness } from '../../../src/k8s/readiness.js'
import { planRollback, servingNow, trafficSwitched } from '../../../src/k8s/rollback.js'
import { tolerateTransient } from '../../../src/k8s/rollout-watch.js'
import { candidateTag, parkedRevision, withProgressDeadline, type Applied } from '../../../src/k8s/rollout.js'
import { KNATIVE_SERVICE, INFERENCE_SERVICE } from '../../../src/k8s/kube.js'
import { Budget, rollbackReserveMs } from '../../../src/util/clock.js'

const managed = (fields: Record<string, unknown>) => [
  { manager: 'mlflow-k8s-deploy', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: fields },
]

function ksvc(status: Record<string, unknown>, extra: Partial<KubeObject> = {}): KubeObject {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: {
      name: 'wine',
      namespace: 'models',
      uid: 'u-1',
      generation: 3,
      annotations: { 'mlflow-k8s-deploy/model-name': 'wine', 'mlflow-k8s-deploy/model-version': '1' },
      managedFields: managed({
        'f:metadata': {
          'f:annotations': { 'f:mlflow-k8s-deploy/model-name': {}, 'f:mlflow-k8s-deploy/model-version': {} },
        },
        'f:spec': { 'f:template': {} },
      }),
    },
    spec: {
      template: { spec: { containers: [{ image: 'r/wine@sha256:1' }] } },
      traffic: [{ latestRevision: true, percent: 100 }],
    },
    status,
    ...extra,
  }
}

const servedBy = (revision: string, extra: Record<string, unknown> = {}) => ({
  observedGeneration: 2,
  url: 'http://wine.models.example.com',
  latestCreatedRevisionName: revision,
  latestReadyRevisionName: revision,
  traffic: [{ revisionName: revision, latestRevision: true, percent: 100 }],
  ...extra,
})

const applied = (previous: KubeObject | undefined, object: KubeObject, standard = false): Applied => ({
  kind: object.kind === 'InferenceService' ? INFERENCE_SERVICE : KNATIVE_SERVICE,
  namespace: 'models',
  name: 'wine',
  object,
  previous,
  created: !previous,
  changed: true,
  tag: undefined,
  expectation: { generation: 3, newRevision: true, ...(standard ? { standard: {} } : {}) },
})

describe('planRollback', () => {
  test('Knative: the traffic as it was, by revision name, with the uid as a precondition; the template stays', () => {
    const previous = ksvc(servedBy('wine-00001'))
    const current = ksvc({ ...servedBy('wine-00001'), latestCreatedRevisionName: 'wine-00002' })
    const plan = planRollback(applied(previous, current), current)
    expect(plan.kind).toBe('traffic')
    if (plan.kind !== 'traffic') return
    expect(plan.body.metadata).toMatchObject({ name: 'wine', namespace: 'models', uid: 'u-1' })
    expect(plan.body.spec).toEqual({
      template: current.spec!['template'],
      traffic: [{ revisionName: 'wine-00001', percent: 100 }],
    })
    expect(plan.targets).toEqual([{ revision: 'wine-00001', percent: 100 }])
    expect(plan.says).toBe('traffic switched back to wine-00001 100% (model wine version 1)')
  })

  test('Knative: a split before the update comes back as it was, tags included', () => {
    const previous = ksvc(
      servedBy('wine-00002', {
        traffic: [
          { revisionName: 'wine-00002', latestRevision: true, percent: 10, tag: 'candidate' },
          { revisionName: 'wine-00001', latestRevision: false, percent: 90 },
        ],
      }),
    )
    const plan = planRollback(applied(previous, previous), previous)
    expect(plan.kind === 'traffic' && plan.body.spec!['traffic']).toEqual([
      { revisionName: 'wine-00002', percent: 10, tag: 'candidate' },
      { revisionName: 'wine-00001', percent: 90 },
    ])
    // The model named is the previous spec's only when it made the revision taking most traffic.
    expect(plan.kind === 'traffic' && plan.says).toBe('traffic switched back to wine-00002 10%, wine-00001 90%')
  })

  test('Knative: a previous Service with no ready revision has nothing to switch back to', () => {
    const previous = ksvc({ observedGeneration: 2, latestCreatedRevisionName: 'wine-00001' })
    expect(planRollback(applied(previous, previous), previous)).toEqual({
      kind: 'none',
      why: 'the previous Service had no ready revision to go back to',
    })
  })

  test('KServe Knative mode: canaryTrafficPercent 0, back to the revision KServe last rolled out', () => {
    const isvc: KubeObject = {
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata: {
        name: 'wine',
        namespace: 'models',
        uid: 'u-2',
        managedFields: managed({ 'f:spec': { 'f:predictor': {} } }),
      },
      spec: { predictor: { containers: [{ image: 'r/wine@sha256:2' }] } },
      status: {
        components: {
          predictor: {
            latestReadyRevision: 'wine-predictor-00002',
            latestCreatedRevision: 'wine-predictor-00002',
            latestRolledoutRevision: 'wine-predictor-00001',
          },
        },
      },
    }
    const plan = planRollback(applied(isvc, isvc), isvc)
    expect(plan.kind === 'traffic' && plan.body.spec).toEqual({
      predictor: { containers: [{ image: 'r/wine@sha256:2' }], canaryTrafficPercent: 0 },
    })
    expect(plan.kind === 'traffic' && plan.targets).toEqual([{ revision: 'wine-predictor-00001', percent: 100 }])
  })

  test('KServe Standard mode: the previous spec again (no revisions to route to)', () => {
    const previous: KubeObject = {
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata: { name: 'wine', namespace: 'models', uid: 'u-3' },
      spec: { predictor: { containers: [{ image: 'r/wine@sha256:1' }] } },
    }
    const current = { ...previous, spec: { predictor: { containers: [{ image: 'r/wine@sha256:2' }] } } }
    const plan = planRollback(applied(previous, current, true), current)
    expect(plan.kind).toBe('respec')
    expect(plan.kind === 'respec' && plan.body.spec).toEqual(previous.spec)
    expect(plan.kind === 'respec' && plan.body.metadata?.uid).toBe('u-3')
  })
})

describe('trafficSwitched', () => {
  const targets = [{ revision: 'wine-00001', percent: 100 }]
  test.each<[string, KubeObject | undefined, string]>([
    ['the object is gone', undefined, 'Deleted: the object was deleted during the rollback'],
    [
      'not observed yet',
      ksvc(servedBy('wine-00002', { observedGeneration: 2 })),
      'waiting for the controller to observe generation 3',
    ],
    [
      'still routing to the failed revision',
      ksvc(servedBy('wine-00002', { observedGeneration: 3 })),
      'traffic is wine-00002 100%; switching to wine-00001 100%',
    ],
    [
      'switched (the latest target at 0 % counts for nothing)',
      ksvc(
        servedBy('wine-00002', {
          observedGeneration: 3,
          traffic: [
            { revisionName: 'wine-00001', percent: 100 },
            { revisionName: 'wine-00002', latestRevision: true, percent: 0, tag: 'x' },
          ],
        }),
      ),
      'ready',
    ],
  ])('%s', (_t, obj, want) => {
    const r = trafficSwitched(obj, targets, 3)
    expect(r.state === 'failed' ? `${r.reason}: ${r.message}` : r.state === 'pending' ? r.detail : 'ready').toBe(want)
  })

  test('what serves: the revision with most of the traffic', () => {
    expect(
      servingNow({
        url: 'http://u',
        revision: 'b',
        traffic: [
          { revision: 'a', percent: 30 },
          { revision: 'b', percent: 70 },
        ],
      }),
    ).toEqual({ url: 'http://u', revision: 'b' })
    expect(servingNow(undefined)).toEqual({})
  })
})

describe('tolerateTransient (wait-window)', () => {
  test('Unschedulable is pending for the window from when it is first seen, then fails; others fail at once', () => {
    let now = 0
    const tolerate = tolerateTransient(30_000, { now: () => now })
    const unschedulable: Readiness = {
      state: 'failed',
      reason: 'Unschedulable',
      message: 'pod p: 0/1 nodes are available',
    }
    expect(tolerate(unschedulable).state).toBe('pending')
    now = 29_000
    expect(tolerate(unschedulable)).toMatchObject({
      state: 'pending',
      detail: expect.stringContaining('tolerated for the wait-window (30.0 s)'),
    })
    now = 30_000
    expect(tolerate(unschedulable)).toEqual({
      ...unschedulable,
      message: 'pod p: 0/1 nodes are available (for longer than the wait-window, 30.0 s)',
    })
    // A pause in between starts the window again.
    expect(tolerate({ state: 'pending', detail: 'x' }).state).toBe('pending')
    now = 40_000
    expect(tolerate(unschedulable).state).toBe('pending')
    expect(tolerate({ state: 'failed', reason: 'ImagePullBackOff', message: 'm' }).state).toBe('failed')
  })

  test('the scheduler saying Unschedulable is a pod failure the window applies to', () => {
    const pod = {
      metadata: { name: 'wine-00002-deployment-x' },
      status: {
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: '0/1 nodes are available: 1 Insufficient cpu.',
          },
        ],
      },
    }
    expect(podFailure([pod])).toEqual({
      reason: 'Unschedulable',
      message: 'pod wine-00002-deployment-x: 0/1 nodes are available: 1 Insufficient cpu.',
    })
  })
})

describe('one deadline for the rollout', () => {
  test.each([
    [600_000, 120_000],
    [120_000, 24_000],
    [30_000, 10_000],
    [8_000, 4_000],
  ])('timeout %d ms keeps %d ms for the rollback', (total, reserve) => {
    expect(rollbackReserveMs(total)).toBe(reserve)
  })

  test('the wait and the smoke test share what is left minus the reserve; the rollback gets the rest', () => {
    let now = 1_000
    const budget = new Budget({ now: () => now }, 120_000)
    expect(budget.forwardMs()).toBe(96_000)
    now += 90_000
    expect(budget.forwardMs()).toBe(6_000)
    expect(budget.rollbackMs()).toBe(30_000)
    now += 200_000
    expect(budget.forwardMs()).toBe(0)
    expect(budget.rollbackMs()).toBe(24_000)
  })

  test("Knative's progress deadline: on the revision template (Knative), on the isvc (KServe); the template's own wins", () => {
    const k = withProgressDeadline({ kind: 'Service', spec: { template: { spec: {} } } }, 479.2)
    expect(k.spec).toEqual({
      template: { metadata: { annotations: { 'serving.knative.dev/progress-deadline': '480s' } }, spec: {} },
    })
    const i = withProgressDeadline({ kind: 'InferenceService', metadata: { name: 'w' } }, 96)
    expect(i.metadata?.annotations).toEqual({ 'serving.knative.dev/progress-deadline': '96s' })
    const own = withProgressDeadline(
      {
        kind: 'Service',
        spec: { template: { metadata: { annotations: { 'serving.knative.dev/progress-deadline': '5m' } } } },
      },
      96,
    )
    expect((own.spec!['template'] as KubeObject).metadata?.annotations).toEqual({
      'serving.knative.dev/progress-deadline': '5m',
    })
  })

  test.each<[string, KubeObject, { trafficPercent?: number; tag?: string }, string | undefined]>([
    ['the user tag', { kind: 'Service' }, { tag: 'next', trafficPercent: 10 }, 'next'],
    ['a Knative split gets candidate', { kind: 'Service' }, { trafficPercent: 10 }, 'candidate'],
    ['a KServe canary: latest', { kind: 'InferenceService' }, { trafficPercent: 10 }, 'latest'],
    ['all traffic: none needed', { kind: 'Service' }, { trafficPercent: 100 }, undefined],
    ['nothing asked', { kind: 'Service' }, {}, undefined],
  ])('the smoke test reaches the candidate through: %s', (_t, manifest, options, tag) => {
    expect(candidateTag(manifest, options)).toBe(tag)
  })
})

describe('parkedRevision: a latest ready revision that serves nothing', () => {
  test.each<[string, Record<string, unknown>, string | undefined]>([
    ['serving everything: not parked', servedBy('wine-00002'), undefined],
    [
      'rolled back from by a traffic switch: parked (the next deploy stages its revision at 0 %)',
      servedBy('wine-00002', { traffic: [{ revisionName: 'wine-00001', latestRevision: false, percent: 100 }] }),
      'wine-00002',
    ],
    [
      'a candidate staged behind a tag at 0 %: parked',
      servedBy('wine-00002', {
        traffic: [
          { revisionName: 'wine-00002', latestRevision: true, percent: 0, tag: 'next' },
          { revisionName: 'wine-00001', latestRevision: false, percent: 100 },
        ],
      }),
      'wine-00002',
    ],
    [
      'a split: not parked',
      servedBy('wine-00002', {
        traffic: [
          { revisionName: 'wine-00002', latestRevision: true, percent: 10 },
          { revisionName: 'wine-00001', latestRevision: false, percent: 90 },
        ],
      }),
      undefined,
    ],
    ['no traffic reported: not judged', { latestReadyRevisionName: 'wine-00001' }, undefined],
  ])('%s', (_t, status, parked) => {
    expect(parkedRevision(ksvc(status))).toBe(parked)
  })
})

describe('pull errors', () => {
  const pod = (reason: string, message: string) => ({
    metadata: { name: 'p' },
    status: { containerStatuses: [{ name: 'c', state: { waiting: { reason, message } } }] },
  })
  test.each<[string, string, string | undefined]>([
    ['a first pull error is retried (a registry blip)', 'failed to pull image "r/w@sha256:1": i/o timeout', undefined],
    [
      'the registry says the image does not exist: final at once (containerd, as the rig words it)',
      'rpc error: code = NotFound desc = failed to pull and unpack image "r/w@sha256:0": failed to resolve image: r/w@sha256:0: not found',
      'ErrImagePull',
    ],
    [
      'the registry refuses the credentials: final at once',
      'failed to pull and unpack image "r/w": failed to resolve image: pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials',
      'ErrImagePull',
    ],
  ])('%s', (_t, message, reason) => {
    expect(podFailure([pod('ErrImagePull', message)])?.reason).toBe(reason)
  })
})

test("Knative's RevisionFailed in the scheduler's words is Unschedulable, so the wait-window applies", async () => {
  const { candidateFailure } = await import('../../../src/k8s/readiness.js')
  const service = ksvc({
    observedGeneration: 3,
    latestCreatedRevisionName: 'wine-00003',
    conditions: [
      {
        type: 'Ready',
        status: 'False',
        reason: 'RevisionFailed',
        message: 'Revision "wine-00003" failed with message: 0/1 nodes are available: 1 Insufficient cpu.',
      },
    ],
  })
  expect(candidateFailure({ service, pods: [] }, { generation: 3, newRevision: true })).toMatchObject({
    state: 'failed',
    reason: 'Unschedulable',
  })
})
