import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { cli, envName, parseFlags, readActionInputs, readVersion, renderHelp } from '../../src/cli.js'

const ROOT = join(import.meta.dirname, '../..')
const INPUTS = readActionInputs(join(ROOT, 'action.yml'))
const NAMES = new Set(INPUTS.map((i) => i.name))
const ACTION = { inputs: INPUTS, version: readVersion(join(ROOT, 'package.json')) }

/** Captures what the CLI writes to each stream. */
function streams() {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l) } }
}

test('flags are the inputs of action.yml', () => {
  expect(NAMES).toContain('model-uri')
  expect(parseFlags(['--model-uri', 'models:/a/1', '--target=kserve', '--json'], NAMES)).toEqual({
    values: { 'model-uri': 'models:/a/1', target: 'kserve' },
    json: true,
    help: false,
    version: false,
  })
})

test.each([
  [['--modle-uri', 'x'], /unknown flag --modle-uri/],
  [['model-uri'], /unexpected argument "model-uri"/],
  [['--model-uri'], /--model-uri needs a value/],
])('rejects %j', (argv, message) => {
  expect(() => parseFlags(argv, NAMES)).toThrow(message)
})

test('env names', () => expect(envName('model-uri')).toBe('MLFLOW_K8S_DEPLOY_MODEL_URI'))

test('--help lists every input with its description, default and variable, and the other variables', () => {
  const help = renderHelp(INPUTS)
  for (const input of INPUTS) expect(help).toContain(`  --${input.name} (`)
  expect(help).toMatch(/--model-uri \(required; MLFLOW_K8S_DEPLOY_MODEL_URI\)/)
  expect(help).toMatch(/--target \(default: knative; MLFLOW_K8S_DEPLOY_TARGET\)/)
  expect(help).toContain('Falls back to MLFLOW_TRACKING_URI.')
  for (const v of ['KUBECONFIG', 'DOCKER_CONFIG', 'HTTPS_PROXY', 'MLFLOW_K8S_DEPLOY_DEBUG']) expect(help).toContain(v)
})

test.each([['--help'], ['-h'], ['--version']])('%s answers on standard output with exit 0', async (flag) => {
  const s = streams()
  const r = await cli([flag], {}, ACTION, s.io)
  expect(r.code).toBe(0)
  expect(s.err).toEqual([])
  expect(s.out.join('\n')).toMatch(flag === '--version' ? /^mlflow-k8s-deploy \d+\.\d+\.\d+$/ : /^usage: /)
})

test('a usage error goes to standard error with exit 2', async () => {
  const s = streams()
  expect((await cli(['--nope', 'x'], {}, ACTION, s.io)).code).toBe(2)
  expect(s.out).toEqual([])
  expect(s.err[0]).toMatch(/^error: unknown flag --nope/)
})

test('a bad value: one error line naming the input, exit 1; flags win over env', async () => {
  const s = streams()
  const r = await cli(
    ['--target', 'knatve'],
    {
      MLFLOW_K8S_DEPLOY_MODEL_URI: 'models:/wine/1',
      MLFLOW_K8S_DEPLOY_TRACKING_URI: 'http://127.0.0.1:1',
      MLFLOW_K8S_DEPLOY_TARGET: 'kserve',
    },
    ACTION,
    s.io,
  )
  expect(r.code).toBe(1)
  expect(s.err).toContain('error: `target`: must be `knative` or `kserve`, got "knatve"')
})

test('secrets are redacted from everything printed; outputs on stdout, the log on stderr', async () => {
  const s = streams()
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
    ACTION,
    s.io,
  )
  expect(r.code).toBe(1)
  expect([...s.out, ...s.err].join('\n')).not.toContain('tok-s3cret')
  expect(s.out).toContain('name=wine')
  expect(s.err.some((l) => l.startsWith('error: resolve model: cannot reach MLflow'))).toBe(true)
  expect(s.out.some((l) => l.startsWith('error:'))).toBe(false)
})

// The bundle as users run it from a terminal.
describe('node dist/index.js', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, 'dist/index.js'), ...args], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '', HOME: '/nonexistent' },
      timeout: 60_000,
    })

  test('--help and --version exit 0', () => {
    const help = run('--help')
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/^usage: mlflow-k8s-deploy /)
    expect(help.stdout).toContain('--model-uri (required')
    const version = run('--version')
    expect(version.status).toBe(0)
    expect(version.stdout.trim()).toBe(
      `mlflow-k8s-deploy ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}`,
    )
  })

  test('--json: standard output is one JSON document, even when the run fails', () => {
    const r = run(
      '--model-uri',
      'models:/wine/1',
      '--tracking-uri',
      'http://127.0.0.1:1',
      '--image-repository',
      'r.example/w',
      '--json',
    )
    expect(r.status).toBe(1)
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'wine', 'model-name': 'wine' })
    expect(r.stderr).toMatch(/error: resolve model: cannot reach MLflow/)
  })
})
