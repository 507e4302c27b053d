import { join } from 'node:path'
import { actionInputNames, cli, envName, parseFlags } from '../../src/cli.js'

const NAMES = actionInputNames(join(import.meta.dirname, '../../action.yml'))

test('flags are the inputs of action.yml', () => {
  expect(NAMES).toContain('model-uri')
  expect(parseFlags(['--model-uri', 'models:/a/1', '--target=kserve', '--json'], new Set(NAMES))).toEqual({
    values: { 'model-uri': 'models:/a/1', target: 'kserve' },
    json: true,
  })
})

test.each([
  [['--modle-uri', 'x'], /unknown flag --modle-uri/],
  [['model-uri'], /unexpected argument "model-uri"/],
  [['--model-uri'], /--model-uri needs a value/],
])('rejects %j', (argv, message) => {
  expect(() => parseFlags(argv, new Set(NAMES))).toThrow(message)
})

test('env names', () => expect(envName('model-uri')).toBe('MLFLOW_K8S_DEPLOY_MODEL_URI'))

test('a bad value: one error line naming the input, exit 1; flags win over env', async () => {
  const lines: string[] = []
  const r = await cli(
    ['--target', 'knatve'],
    {
      MLFLOW_K8S_DEPLOY_MODEL_URI: 'models:/wine/1',
      MLFLOW_K8S_DEPLOY_TRACKING_URI: 'http://127.0.0.1:1',
      MLFLOW_K8S_DEPLOY_TARGET: 'kserve',
    },
    NAMES,
    (l) => lines.push(l),
  )
  expect(r.code).toBe(1)
  expect(lines).toContain('error: `target`: must be `knative` or `kserve`, got "knatve"')
})

test('secrets are redacted from everything printed', async () => {
  const lines: string[] = []
  const r = await cli(
    [
      '--model-uri',
      'models:/wine/1',
      '--tracking-uri',
      'http://127.0.0.1:1',
      '--image-repository',
      'r.example/w',
      '--mlflow-token',
      'tok-s3cret',
    ],
    {},
    NAMES,
    (l) => lines.push(l),
  )
  expect(r.code).toBe(1)
  expect(lines.join('\n')).not.toContain('tok-s3cret')
  expect(lines).toContain('name=wine')
  expect(lines.some((l) => l.startsWith('error: resolve model: cannot reach MLflow'))).toBe(true)
})
