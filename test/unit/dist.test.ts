// Runs the committed bundle the way the runner does: `node dist/index.js` with INPUT_* variables
// and the GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files.
import { runDist } from '../support/run-dist.js'

// Nothing from this machine leaks in: no KUBECONFIG, no MLflow variables, HOME a fresh folder.
const runAction = (inputs: Record<string, string>) => runDist(inputs)

test('no inputs: one line naming model-uri, non-zero exit', async () => {
  const r = await runAction({})
  expect(r.status).not.toBe(0)
  expect(r.errors).toHaveLength(1)
  expect(r.errors[0]).toMatch(/^::error::`model-uri`: required/)
  expect(r.stdout).not.toMatch(/\n\s+at /)
})

// A bad input is one whole ::error:: line naming the input; quoted values are escaped JSON-style.
test.each([
  [
    'a bad enum names the allowed values',
    { target: 'knatve' },
    '::error::`target`: must be `knative` or `kserve`, got "knatve"',
  ],
  [
    'a label value with a newline is quoted, not cut',
    { labels: 'acc.example/hostile: "x\\ny"' },
    "::error::`labels`: value of \"acc.example/hostile\" is \"x\\ny\": label values are at most 63 characters: letters, digits, '-', '_' and '.', beginning and ending with a letter or digit",
  ],
])('%s', async (_case, bad, error) => {
  const r = await runAction({
    'model-uri': 'models:/wine/1',
    'tracking-uri': 'http://127.0.0.1:1',
    'image-repository': 'r.example/wine',
    ...bad,
  })
  expect(r.status).not.toBe(0)
  expect(r.errors).toEqual([error])
})

test('a failing stage is one line naming the stage and the fix; known outputs and the summary are still written', async () => {
  const r = await runAction({
    'model-uri': 'models:/wine-classifier@champion',
    'tracking-uri': 'http://127.0.0.1:1',
    'image-repository': '127.0.0.1:5001/wine',
    namespace: 'deploy',
    'mlflow-token': 'super-secret-token',
  })
  expect(r.status).not.toBe(0)
  expect(r.stdout).toContain('::add-mask::super-secret-token')
  expect(r.stdout.replace('::add-mask::super-secret-token', '')).not.toContain('super-secret-token')
  expect(r.errors).toEqual([
    '::error::resolve model: cannot reach MLflow at http://127.0.0.1:1: connection refused (is the server up, is the port right?); check tracking-uri',
  ])
  expect(r.outputs).toEqual({ name: 'wine-classifier', namespace: 'deploy', 'model-name': 'wine-classifier' })
  expect(r.summary).toContain('| resolve model | ❌ failed |')
  expect(r.summary).toContain('| Service | deploy/wine-classifier |')
})

test('delete runs only the delete stage', async () => {
  const r = await runAction({
    'model-uri': 'models:/wine-classifier/2',
    action: 'delete',
    name: 'wine',
    kubeconfig: '',
  })
  expect(r.status).not.toBe(0)
  expect(r.outputs['name']).toBe('wine')
  expect(r.errors[0]).toMatch(/^::error::delete: /)
  expect(r.stdout).not.toContain('resolve model')
})
