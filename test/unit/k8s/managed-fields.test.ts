import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { appliedFields, projectFields } from '../../../src/k8s/managed-fields.js'
import type { KubeObject } from '../../../src/k8s/readiness.js'
import { restoreManifest } from '../../../src/k8s/rollback.js'

// A Knative Service as the rig's real apiserver and Knative webhook return it after a server-side
// apply by the action's field manager (managedFields included).
const applied = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/k8s/knative/managed-fields.json'), 'utf8'),
) as KubeObject

describe('managed fields', () => {
  test('the action restores only what it applied: the webhook-set creator annotations stay out', () => {
    const restored = restoreManifest(applied)
    expect(restored.metadata).toEqual({
      name: 'mf-echo',
      namespace: 'deploy',
      labels: { 'app.kubernetes.io/managed-by': 'mlflow-k8s-deploy', team: 'ml' },
      annotations: { 'mlflow-k8s-deploy/model-version': '1' },
    })
    expect(applied.metadata?.annotations?.['serving.knative.dev/creator']).toBe('deployer')
    // Knative's defaults (timeoutSeconds, readinessProbe, containerConcurrency…) are the webhook's.
    const spec = restored.spec as { template: { spec: Record<string, unknown> } }
    expect(Object.keys(spec.template.spec)).toEqual(['containers'])
    expect(spec.template.spec['containers']).toEqual((applied.spec as typeof spec).template.spec['containers'])
  })

  test('no Apply entry of the manager: undefined', () => {
    expect(appliedFields(applied, 'someone-else')).toBeUndefined()
  })

  test.each([
    [
      'keyed list items and their fields',
      {
        a: [
          { name: 'x', v: 1, w: 2 },
          { name: 'y', v: 3 },
        ],
      },
      { 'f:a': { 'k:{"name":"x"}': { '.': {}, 'f:name': {}, 'f:v': {} } } },
      { a: [{ name: 'x', v: 1 }] },
    ],
    ['set values', { s: ['a', 'b', 'c'] }, { 'f:s': { 'v:"a"': {}, 'v:"c"': {} } }, { s: ['a', 'c'] }],
    ['an atomic field whole', { m: { x: 1, y: { z: 2 } }, n: 1 }, { 'f:m': {} }, { m: { x: 1, y: { z: 2 } } }],
    ['a named field that is gone', { a: 1 }, { 'f:b': {} }, {}],
  ])('%s', (_, value, fields, expected) => {
    expect(projectFields(value, fields)).toEqual(expected)
  })
})
