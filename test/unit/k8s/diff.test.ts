import { diffObject, formatDiff, summarizeDiff } from '../../../src/k8s/diff.js'
import type { KubeObject } from '../../../src/k8s/readiness.js'

/** A Knative Service as the action renders it, with what a server adds around it. */
function ksvc(image: string, env: Record<string, string>, extra: { traffic?: unknown[]; server?: boolean } = {}) {
  const o: KubeObject = {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name: 'wine', namespace: 'deploy', labels: { 'app.kubernetes.io/managed-by': 'mlflow-k8s-deploy' } },
    spec: {
      template: {
        spec: {
          containers: [{ name: 'model', image, env: Object.entries(env).map(([name, value]) => ({ name, value })) }],
        },
      },
      ...(extra.traffic ? { traffic: extra.traffic } : {}),
    },
  }
  if (extra.server) {
    // Defaults, status and bookkeeping the server adds: never part of the diff.
    o.metadata!.generation = 3
    o.metadata!.resourceVersion = '812'
    ;(o.metadata as Record<string, unknown>)['managedFields'] = [{ manager: 'mlflow-k8s-deploy' }]
    ;(o.spec!['template'] as { spec: Record<string, unknown> }).spec['timeoutSeconds'] = 300
    o.status = { conditions: [{ type: 'Ready', status: 'True' }] }
  }
  return o
}

test.each([
  {
    case: 'same spec again',
    live: ksvc('r/wine@sha256:a', { A: '1' }, { server: true }),
    desired: ksvc('r/wine@sha256:a', { A: '1' }),
    summary: 'no change',
    lines: [],
  },
  {
    case: 'new image, one env added, one removed, one changed',
    live: ksvc('r/wine@sha256:a', { A: '1', B: '2', C: '3' }, { server: true }),
    desired: ksvc('r/wine:v4-planned', { A: '1', B: '5', FOO: 'x' }),
    summary: 'container image r/wine@sha256:a → r/wine:v4-planned, container env[B].value, env +FOO, env -C',
    lines: [
      '  spec.template.spec.containers[model].image: r/wine@sha256:a → r/wine:v4-planned',
      '  spec.template.spec.containers[model].env[B].value: 2 → 5',
      '  env +FOO',
      '  env -C',
    ],
  },
])('$case', ({ live, desired, summary, lines }) => {
  // The dry-run result is the desired object as the server would store it.
  const result = { ...desired, metadata: { ...desired.metadata, generation: 4 }, status: live.status }
  const diff = diffObject(live, desired, result)
  expect(diff.created).toBe(false)
  expect(summarizeDiff(diff)).toBe(summary)
  expect(formatDiff('Service deploy/wine', diff)).toEqual([
    `Service deploy/wine: ${summary}`,
    ...lines,
    'traffic: unchanged',
  ])
})

test('an object that does not exist yet is created', () => {
  const desired = ksvc('r/wine:v1-planned', {})
  const diff = diffObject(undefined, desired, desired)
  expect(summarizeDiff(diff)).toBe('new')
  expect(formatDiff('Service deploy/wine', diff)).toEqual([
    'Service deploy/wine: does not exist yet; the deploy creates it',
    'traffic: unchanged',
  ])
})

test.each([
  [
    undefined,
    [
      { revisionName: 'wine-00001', percent: 90 },
      { latestRevision: true, percent: 10, tag: 'candidate' },
    ],
    '100% to the latest revision → wine-00001 90%, latest 10% (tag candidate)',
  ],
  [[{ latestRevision: true, percent: 100 }], [{ latestRevision: true, percent: 100 }], 'unchanged'],
])('knative traffic %j → %j: %s', (before, after, expected) => {
  const live = ksvc('i', {}, { traffic: before as unknown[] | undefined })
  const desired = ksvc('i', {}, { traffic: after })
  expect(diffObject(live, desired, desired).traffic).toBe(expected)
})

test('kserve canary percent', () => {
  const isvc = (canary?: number): KubeObject => ({
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: 'wine', namespace: 'deploy' },
    spec: {
      predictor: {
        ...(canary === undefined ? {} : { canaryTrafficPercent: canary }),
        model: { storageUri: 's3://b/2' },
      },
    },
  })
  const diff = diffObject(isvc(), isvc(20), isvc(20))
  expect(diff.traffic).toBe('100% to the latest revision → canary 20%')
  expect(diff.changes).toEqual([])
})
