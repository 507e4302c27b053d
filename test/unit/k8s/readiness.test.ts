import {
  awaitedRevision,
  failureKey,
  revisionRolloutReadiness,
  readiness,
  servingStatus,
  tagUrl,
  type Expectation,
  type RevisionSnapshot,
  type KubeObject,
} from '../../../src/k8s/readiness.js'
import { restoreManifest } from '../../../src/k8s/rollback.js'
import { changesRevision, expectationFor, withTraffic } from '../../../src/k8s/rollout.js'
import { currentReplicaSet, standardReadiness, type PredictorSnapshot } from '../../../src/k8s/standard.js'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Status objects in the shape Knative Serving and KServe write them (Knative's Serving API specification; KServe's InferenceService status).
const cond = (type: string, status: string, reason?: string, message?: string) => ({
  type,
  status,
  ...(reason ? { reason } : {}),
  ...(message ? { message } : {}),
  lastTransitionTime: '2026-11-22T08:00:00Z',
})

function ksvc(generation: number, status: Record<string, unknown> | undefined): KubeObject {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name: 'wine', namespace: 'models', generation },
    spec: { template: { spec: { containers: [{ image: `r/wine:${generation}` }] } } },
    ...(status ? { status } : {}),
  }
}

const readyV1 = {
  observedGeneration: 1,
  url: 'http://wine.models.example.com',
  latestCreatedRevisionName: 'wine-00001',
  latestReadyRevisionName: 'wine-00001',
  traffic: [{ revisionName: 'wine-00001', latestRevision: true, percent: 100 }],
  conditions: [cond('ConfigurationsReady', 'True'), cond('Ready', 'True'), cond('RoutesReady', 'True')],
}

/** v2 ready and staged at 10 %, v1 pinned at 90 %. */
const splitV2 = {
  ...readyV1,
  observedGeneration: 2,
  latestCreatedRevisionName: 'wine-00002',
  latestReadyRevisionName: 'wine-00002',
  traffic: [
    { revisionName: 'wine-00002', latestRevision: true, percent: 10 },
    { revisionName: 'wine-00001', latestRevision: false, percent: 90 },
  ],
}

/**
 * Generation 4 staged at 0 % behind the tag `candidate`, wine-00002 pinned at 100 %, wine-00004 (the
 * new revision) created and ready, and the route saying that `named` failed to become ready.
 */
function staged(named: string): KubeObject {
  const says = `Revision "${named}" failed to become ready.`
  const obj = ksvc(4, {
    ...readyV1,
    observedGeneration: 4,
    latestCreatedRevisionName: 'wine-00004',
    latestReadyRevisionName: 'wine-00004',
    traffic: [{ revisionName: 'wine-00002', latestRevision: false, percent: 100 }],
    conditions: [
      cond('ConfigurationsReady', 'True'),
      cond('Ready', 'False', 'RevisionMissing', says),
      cond('RoutesReady', 'False', 'RevisionMissing', says),
    ],
  })
  obj.spec!['traffic'] = [
    { latestRevision: true, percent: 0, tag: 'candidate' },
    { revisionName: 'wine-00002', percent: 100 },
  ]
  return obj
}

const text = (r: ReturnType<typeof readiness>) =>
  r.state === 'failed' ? `${r.reason}: ${r.message}` : r.state === 'pending' ? r.detail : 'ready'

const update: Expectation = { generation: 2, previousRevision: 'wine-00001', newRevision: true }
const first: Expectation = { generation: 1, newRevision: true }
const staged4: Expectation = { generation: 4, previousRevision: 'wine-00003', newRevision: true }

describe('Knative Service readiness', () => {
  test.each<[string, KubeObject, Expectation, string, string?]>([
    ['no status yet', ksvc(1, undefined), first, 'pending', 'observe generation 1 (observed none)'],
    ['first deploy ready', ksvc(1, readyV1), first, 'ready'],
    // The trap mlflow-knative falls into: Ready=True describes generation 1, we applied 2.
    [
      'old generation Ready, new not observed',
      ksvc(2, readyV1),
      update,
      'pending',
      'observe generation 2 (observed 1)',
    ],
    [
      'new generation observed, revision deploying',
      ksvc(2, {
        ...readyV1,
        observedGeneration: 2,
        latestCreatedRevisionName: 'wine-00002',
        conditions: [
          cond('ConfigurationsReady', 'Unknown', 'Deploying'),
          cond('Ready', 'Unknown', 'Deploying'),
          cond('RoutesReady', 'True'),
        ],
      }),
      update,
      'pending',
      'Ready=Unknown (Deploying)',
    ],
    [
      'observed but no new revision yet',
      ksvc(2, { ...readyV1, observedGeneration: 2 }),
      update,
      'pending',
      'waiting for a new revision',
    ],
    [
      'new revision ready',
      ksvc(2, {
        ...readyV1,
        observedGeneration: 2,
        latestCreatedRevisionName: 'wine-00002',
        latestReadyRevisionName: 'wine-00002',
      }),
      update,
      'ready',
    ],
    [
      'Ready=True but latest created not ready yet (pinned traffic)',
      ksvc(2, { ...readyV1, observedGeneration: 2, latestCreatedRevisionName: 'wine-00002' }),
      update,
      'pending',
      'wine-00002 is not ready yet (wine-00001 serves)',
    ],
    [
      // Seen on the rig: a revision that was Ready and failed later (left unrouted by a rollback)
      // is still the latest ready one, so the route's latestRevision target names it until the new
      // revision is ready. Not this rollout's failure.
      'the route still names a failed older revision while the new one starts',
      ksvc(3, {
        ...readyV1,
        observedGeneration: 3,
        latestCreatedRevisionName: 'wine-00003',
        latestReadyRevisionName: 'wine-00002',
        conditions: [
          cond('ConfigurationsReady', 'Unknown', 'Deploying'),
          cond('Ready', 'False', 'RevisionMissing', 'Revision "wine-00002" failed to become ready.'),
          cond('RoutesReady', 'False', 'RevisionMissing', 'Revision "wine-00002" failed to become ready.'),
        ],
      }),
      { generation: 3, previousRevision: 'wine-00002', newRevision: true },
      'pending',
      'revision wine-00003 is not ready yet; meanwhile the route says: Revision "wine-00002" failed to become ready.',
    ],
    [
      // Seen on the rig (CI of 6e47506): the new revision staged at 0 % became the latest ready one,
      // and the Service copied that from the Configuration before the Route had re-resolved its
      // latestRevision target, which still named the failed revision the rollback left behind.
      'the new revision is ready but the route has not caught up with it yet',
      staged('wine-00003'),
      staged4,
      'pending',
      'the route has not caught up with revision wine-00004 yet; it still says: Revision "wine-00003" failed to become ready.',
    ],
    [
      "a pinned revision that failed is the route's own verdict, not a lag",
      staged('wine-00002'),
      staged4,
      'failed',
      'RevisionMissing: Revision "wine-00002" failed to become ready.',
    ],
    [
      'the route naming the latest ready revision as failed is a failure',
      staged('wine-00004'),
      staged4,
      'failed',
      'RevisionMissing: Revision "wine-00004" failed to become ready.',
    ],
    [
      'a traffic-only change to a revision that is not ready fails at once',
      ksvc(3, {
        ...readyV1,
        observedGeneration: 3,
        conditions: [
          cond('ConfigurationsReady', 'True'),
          cond('Ready', 'False', 'RevisionMissing', 'Revision "wine-00009" referenced in traffic not found.'),
          cond('RoutesReady', 'False', 'RevisionMissing', 'Revision "wine-00009" referenced in traffic not found.'),
        ],
      }),
      { generation: 3, previousRevision: 'wine-00001', newRevision: false },
      'failed',
      'RevisionMissing: Revision "wine-00009" referenced in traffic not found.',
    ],
    [
      'unpullable image: Ready=False RevisionFailed, old revision serving',
      ksvc(2, {
        ...readyV1,
        observedGeneration: 2,
        latestCreatedRevisionName: 'wine-00002',
        conditions: [
          cond(
            'ConfigurationsReady',
            'False',
            'RevisionFailed',
            'Revision "wine-00002" failed with message: Unable to fetch image "r/wine:2": failed to resolve image to digest: 404.',
          ),
          cond('Ready', 'False', 'RevisionFailed'),
          cond('RoutesReady', 'True'),
        ],
      }),
      update,
      'failed',
      'RevisionFailed: Revision "wine-00002" failed with message: Unable to fetch image',
    ],
    [
      'old generation failed, new one not observed: not a failure yet',
      ksvc(3, {
        ...readyV1,
        observedGeneration: 2,
        conditions: [cond('Ready', 'False', 'RevisionFailed', 'old failure')],
      }),
      { generation: 3, previousRevision: 'wine-00002', newRevision: true },
      'pending',
    ],
    [
      'no change, still ready',
      ksvc(1, readyV1),
      { generation: 1, previousRevision: 'wine-00001', newRevision: false },
      'ready',
    ],
  ])('%s', (...[, obj, expect_, state, detail]) => {
    const r = readiness(obj, expect_)
    expect(r.state).toBe(state)
    if (detail) expect(text(r)).toContain(detail)
  })

  test('a deleted object fails the wait', () => {
    expect(readiness(undefined, first)).toMatchObject({ state: 'failed', reason: 'Deleted' })
  })
})

function isvc(status: Record<string, unknown> | undefined, generation = 1): KubeObject {
  return {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: 'wine', namespace: 'models', generation },
    spec: { predictor: { model: { modelFormat: { name: 'mlflow' }, storageUri: `s3://b/${generation}` } } },
    ...(status ? { status } : {}),
  }
}

const predictor = (created: string, ready?: string) => ({
  predictor: {
    latestCreatedRevision: created,
    ...(ready ? { latestReadyRevision: ready, latestRolledoutRevision: ready } : {}),
    url: 'http://wine-predictor.models.example.com',
    traffic: ready ? [{ revisionName: ready, latestRevision: true, percent: 100 }] : [],
  },
})

const isvcReady = {
  // KServe copies the child ksvc's generation here: 3 on an isvc at generation 1 is normal.
  observedGeneration: 3,
  url: 'http://wine.models.example.com',
  components: predictor('wine-predictor-00001', 'wine-predictor-00001'),
  modelStatus: { transitionStatus: 'UpToDate', states: { activeModelState: 'Loaded', targetModelState: 'Loaded' } },
  conditions: [cond('IngressReady', 'True'), cond('PredictorReady', 'True'), cond('Ready', 'True')],
}

const failedLoad = {
  ...isvcReady,
  components: predictor('wine-predictor-00002', 'wine-predictor-00001'),
  modelStatus: {
    transitionStatus: 'BlockedByFailedLoad',
    states: { activeModelState: 'Loaded', targetModelState: 'FailedToLoad' },
    lastFailureInfo: {
      reason: 'ModelLoadFailed',
      message: 'Container failed with: OSError: model not found (exit code 1).',
      modelRevisionName: 'wine-predictor-00002',
      time: '2026-11-22T08:01:00Z',
    },
  },
  conditions: [
    cond('IngressReady', 'True'),
    cond('PredictorReady', 'False', 'RevisionFailed', 'Revision "wine-predictor-00002" failed with message: ...'),
    cond('Ready', 'False', 'RevisionFailed'),
  ],
}

describe('InferenceService readiness', () => {
  const upd: Expectation = { generation: 2, previousRevision: 'wine-predictor-00001', newRevision: true }
  test.each<[string, KubeObject, Expectation, string, string?]>([
    ['ready although observedGeneration differs from metadata.generation', isvc(isvcReady), first, 'ready'],
    [
      'first deploy, ingress not yet created (Ready=False is transient in KServe)',
      isvc({
        conditions: [
          cond('IngressReady', 'False', 'PredictorIngressNotCreated'),
          cond('PredictorReady', 'Unknown'),
          cond('Ready', 'False', 'PredictorIngressNotCreated'),
        ],
      }),
      first,
      'pending',
    ],
    ['update not picked up yet: old revision Ready', isvc(isvcReady, 2), upd, 'pending', 'new predictor revision'],
    [
      'new revision created, loading',
      isvc(
        {
          ...isvcReady,
          components: predictor('wine-predictor-00002', 'wine-predictor-00001'),
          modelStatus: { transitionStatus: 'InProgress' },
          conditions: [cond('PredictorReady', 'Unknown', 'Deploying'), cond('Ready', 'Unknown')],
        },
        2,
      ),
      upd,
      'pending',
    ],
    [
      'Ready=True but the new revision is not the ready one',
      isvc({ ...isvcReady, components: predictor('wine-predictor-00002', 'wine-predictor-00001') }, 2),
      upd,
      'pending',
      'wine-predictor-00002 is not ready yet',
    ],
    [
      'new revision ready',
      isvc({ ...isvcReady, components: predictor('wine-predictor-00002', 'wine-predictor-00002') }, 2),
      upd,
      'ready',
    ],
    ['model failed to load', isvc(failedLoad, 2), upd, 'failed', 'ModelLoadFailed: Container failed with'],
    [
      'no supporting runtime (InvalidSpec, no revision is ever made)',
      isvc({
        modelStatus: {
          transitionStatus: 'InvalidSpec',
          lastFailureInfo: {
            reason: 'NoSupportingRuntime',
            message: 'No runtime found to support specified framework/version',
          },
        },
        conditions: [cond('PredictorReady', 'False', 'NoSupportingRuntime'), cond('Ready', 'False')],
      }),
      first,
      'failed',
      'NoSupportingRuntime: No runtime found',
    ],
    [
      'raw mode: PredictorReady=False while pods start is not terminal',
      isvc({ conditions: [cond('PredictorReady', 'False', 'MinimumReplicasUnavailable'), cond('Ready', 'False')] }),
      first,
      'pending',
    ],
  ])('%s', (...[, obj, expect_, state, detail]) => {
    const r = readiness(obj, expect_)
    expect(r.state).toBe(state)
    if (detail) expect(text(r)).toContain(detail)
  })

  test('a failure seen before the apply is stale until a new revision appears', () => {
    const before = isvc(failedLoad, 2)
    const fixed = isvc(failedLoad, 3)
    const expect_ = expectationFor(before, fixed)
    expect(expect_.staleFailure).toBe(failureKey(before))
    expect(expect_.previousRevision).toBe('wine-predictor-00002')
    expect(readiness(fixed, expect_).state).toBe('pending')
    // The same failure with a different message (a new attempt) counts.
    const again = structuredClone(fixed)
    ;(again.status!['modelStatus'] as { lastFailureInfo: { time: string } }).lastFailureInfo.time =
      '2026-11-22T08:05:00Z'
    expect(readiness(again, expect_).state).toBe('failed')
  })
})

describe('serving status', () => {
  test('Knative tag URLs come from status.traffic', () => {
    const s = servingStatus(
      ksvc(2, {
        ...readyV1,
        traffic: [
          { revisionName: 'wine-00001', percent: 100 },
          {
            revisionName: 'wine-00002',
            latestRevision: true,
            percent: 0,
            tag: 'candidate',
            url: 'http://candidate-wine.models.example.com',
          },
        ],
      }),
    )
    expect(s.revision).toBe('wine-00001')
    expect(tagUrl(s, 'candidate')).toBe('http://candidate-wine.models.example.com')
    expect(tagUrl(s, 'other')).toBeUndefined()
  })

  test('KServe URL and revision come from the predictor component', () => {
    const s = servingStatus(isvc(isvcReady))
    expect(s).toMatchObject({ url: 'http://wine.models.example.com', revision: 'wine-predictor-00001' })
  })
})

describe('rollout decisions', () => {
  test('a new revision is expected when the template changes, not when only traffic does', () => {
    const a = ksvc(1, readyV1)
    const b = { ...ksvc(1, readyV1), spec: { ...a.spec, traffic: [{ latestRevision: true, percent: 100, tag: 'x' }] } }
    expect(changesRevision(a, b)).toBe(false)
    expect(changesRevision(a, ksvc(2, readyV1))).toBe(true)
    const i = isvc(isvcReady)
    const canary = structuredClone(i)
    ;(canary.spec!['predictor'] as Record<string, unknown>)['canaryTrafficPercent'] = 10
    expect(changesRevision(i, canary)).toBe(false)
    expect(changesRevision(i, isvc(isvcReady, 2))).toBe(true)
  })

  test.each<[string, { trafficPercent?: number; tag?: string }, KubeObject | undefined, unknown]>([
    ['nothing asked: no traffic block', {}, ksvc(1, readyV1), undefined],
    [
      'tag alone stages the new revision at 0 %',
      { tag: 'candidate' },
      ksvc(1, readyV1),
      [
        { latestRevision: true, percent: 0, tag: 'candidate' },
        { revisionName: 'wine-00001', percent: 100 },
      ],
    ],
    [
      'a split without a tag: the new revision gets one, so the smoke test reaches it alone',
      { trafficPercent: 20 },
      ksvc(1, readyV1),
      [
        { latestRevision: true, percent: 20, tag: 'candidate' },
        { revisionName: 'wine-00001', percent: 80 },
      ],
    ],
    [
      'moving a split keeps the stable revision (not the candidate, which is latest ready by now)',
      { trafficPercent: 50 },
      ksvc(2, splitV2),
      [
        { latestRevision: true, percent: 50, tag: 'candidate' },
        { revisionName: 'wine-00001', percent: 50 },
      ],
    ],
    [
      'traffic rolled back: 0 % to the candidate, everything to the stable revision',
      { trafficPercent: 0 },
      ksvc(2, splitV2),
      [
        { latestRevision: true, percent: 0, tag: 'candidate' },
        { revisionName: 'wine-00001', percent: 100 },
      ],
    ],
    [
      'promotion: 100 % to the latest revision',
      { trafficPercent: 100 },
      ksvc(2, splitV2),
      [{ latestRevision: true, percent: 100 }],
    ],
    [
      'first deploy takes everything',
      { trafficPercent: 20, tag: 'c' },
      undefined,
      [{ latestRevision: true, percent: 100, tag: 'c' }],
    ],
  ])('Knative traffic: %s', (_t, options, previous, traffic) => {
    const out = withTraffic(ksvc(2, undefined), options, previous)
    expect(out.spec!['traffic']).toEqual(traffic)
  })

  test('KServe traffic is canaryTrafficPercent', () => {
    const out = withTraffic(isvc(undefined), { trafficPercent: 10 }, isvc(isvcReady))
    expect((out.spec!['predictor'] as Record<string, unknown>)['canaryTrafficPercent']).toBe(10)
  })

  test('restoring keeps spec, labels and annotations, drops server fields', () => {
    const prev = ksvc(1, readyV1)
    prev.metadata!.labels = { 'app.kubernetes.io/managed-by': 'mlflow-k8s-deploy' }
    prev.metadata!.resourceVersion = '42'
    const body = restoreManifest(prev)
    expect(body).toEqual({
      apiVersion: 'serving.knative.dev/v1',
      kind: 'Service',
      metadata: { name: 'wine', namespace: 'models', labels: { 'app.kubernetes.io/managed-by': 'mlflow-k8s-deploy' } },
      spec: prev.spec,
    })
  })
})

// KServe Standard (RawDeployment) mode: snapshots recorded from the rig's real KServe v0.19.0
// controller and Kubernetes v1.36 node (isvc, predictor Deployment, its ReplicaSets and pods,
// trimmed of managedFields) by test/integration/k8s/kserve.test.ts.
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/k8s/kserve')
interface Recorded extends PredictorSnapshot {
  /** What was going on when it was recorded. */
  readonly note: string
  /** The predictor Deployment's generation before the apply that led here (absent: first deploy). */
  readonly previousDeploymentGeneration?: number
  readonly service?: KubeObject
}
const recorded = (name: string): Recorded =>
  JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Recorded

const firstStandard: Expectation = { generation: 1, newRevision: true, standard: {} }
const standardUpdate = (previousDeploymentGeneration: number): Expectation => ({
  generation: 2,
  newRevision: true,
  standard: { previousDeploymentGeneration },
})

describe('Standard-mode readiness from recorded snapshots', () => {
  const cases = readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.replace(/\.json$/, ''))
  test('fixtures are present', () => expect(cases.length).toBeGreaterThan(0))

  // file, expected state, text the verdict must contain
  const table: [string, 'pending' | 'ready' | 'failed', string][] = [
    ['first-deploy-starting', 'pending', ''],
    ['first-deploy-ready', 'ready', ''],
    ['first-deploy-pull-failure', 'failed', 'ImagePullBackOff: pod probe-raw-predictor-'],
    ['update-rolling', 'pending', ''],
    ['update-ready', 'ready', ''],
    ['update-pull-failure', 'failed', 'ImagePullBackOff'],
    ['update-crash-loop', 'failed', 'CrashLoopBackOff'],
    ['update-model-load-failure', 'failed', 'CrashLoopBackOff'],
  ]
  test.each(table.filter(([f]) => cases.includes(f)))('%s → %s', (file, state, detail) => {
    const snap = recorded(file)
    const expect_ =
      snap.previousDeploymentGeneration === undefined
        ? firstStandard
        : standardUpdate(snap.previousDeploymentGeneration)
    const r = standardReadiness(snap, expect_)
    expect(r.state).toBe(state)
    const text = r.state === 'failed' ? `${r.reason}: ${r.message}` : r.state === 'pending' ? r.detail : 'ready'
    if (detail) expect(text).toContain(detail)
    if (r.state === 'ready') expect(r.serving.revision).toBe(currentReplicaSet(snap)?.metadata?.name)
  })

  test('every recorded update is pending while the Deployment still has its old generation', () => {
    for (const file of cases) {
      const snap = recorded(file)
      const generation = snap.deployment?.metadata?.generation
      if (generation === undefined) continue
      expect(standardReadiness(snap, standardUpdate(generation)).state).toBe('pending')
    }
  })
})

// Knative: snapshots recorded from the rig's real Knative Serving v0.48.1 (controller, autoscaler,
// activator, net-gateway-api + Contour/Envoy) on the Kubernetes v1.36 node: the Service, its
// Route, Configuration and Revisions, and the pods of its latest created revision.
const KNATIVE_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/k8s/knative')
interface RecordedKnative extends RevisionSnapshot {
  readonly note: string
  readonly expect: Expectation
}
const recordedKnative = (name: string): RecordedKnative =>
  JSON.parse(readFileSync(join(KNATIVE_FIXTURES, `${name}.json`), 'utf8')) as RecordedKnative

describe('Knative readiness from recorded snapshots', () => {
  const files = readdirSync(KNATIVE_FIXTURES).filter((f) => f.endsWith('.json'))
  test('fixtures are present', () => expect(files.length).toBeGreaterThan(0))

  test.each([
    ['first-deploy-creating', 'pending', 'Ready=Unknown (RevisionMissing'],
    ['first-deploy-ready', 'ready', 'ready'],
    // Knative itself would say Unknown until the progress deadline; the pods say why now.
    ['first-deploy-crash-loop', 'failed', 'CrashLoopBackOff: revision crash1-00001 cannot start: pod crash1-00001-'],
    ['update-rolling', 'pending', 'Ready=Unknown'],
    ['update-ready', 'ready', 'ready'],
    ['update-pull-backoff', 'failed', 'ImagePullBackOff: revision echo2-00004 cannot start: pod echo2-00004-'],
    ['update-pull-failure-after-deadline', 'failed', 'Initial scale was never achieved'],
    ['split-tagged-rolling', 'pending', 'Ready=Unknown (Uninitialized'],
    ['split-tagged-ready', 'ready', 'ready'],
  ] as const)('%s → %s', (name, state, fragment) => {
    const r = recordedKnative(name)
    const verdict = revisionRolloutReadiness(r, r.expect)
    expect(verdict.state).toBe(state)
    expect(text(verdict)).toContain(fragment)
  })

  test('the crash loop is worded with the exit code and what the container said', () => {
    const r = recordedKnative('first-deploy-crash-loop')
    expect(text(revisionRolloutReadiness(r, r.expect))).toMatch(
      /container user-container: exited with code 3: model exploded \(restarted \d+ times\)$/,
    )
  })

  test('the pods of the previous revision do not count', () => {
    const r = recordedKnative('update-pull-backoff')
    const before = { ...r.service, status: { ...r.service.status, latestCreatedRevisionName: 'echo2-00003' } }
    expect(awaitedRevision(before, r.expect)).toBeUndefined()
    expect(revisionRolloutReadiness({ service: before, pods: r.pods }, r.expect).state).toBe('pending')
  })

  test('the split is read from the real status, tag URLs included', () => {
    const r = recordedKnative('split-tagged-ready')
    const serving = servingStatus(r.service)
    expect(serving.traffic.map((t) => [t.revision, t.percent, t.tag])).toEqual([
      ['echo2-00003', 20, 'candidate'],
      ['echo2-00002', 80, 'stable'],
    ])
    expect(tagUrl(serving, 'candidate')).toBe('http://candidate-echo2.default.rig.test')
  })
})
