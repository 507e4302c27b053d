// The bundled action with image-repository on the rig's Bearer-token registry (parts/
// token_registry.sh), logged in as the user whose namespace it is: the plan checks push access,
// builds, pushes, and the real node pulls the image with an imagePullSecret (containerd fetches its
// own token). A repository outside the user's scope fails at the plan with one line, before a build.
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { rigEnv } from '../rig-env.js'
import { expectSuccess, predict, pyfuncPrediction, rigInputs, runAction } from './run-action.js'

const run = promisify(execFile)
const RUN = Date.now().toString(36)
const MODEL = () => rigEnv('FIXTURE_MODEL')
const NAME = `e2e-wine-tok-${RUN}`
const SECRET = `it-tok-pull-${RUN}`
const REG = () => rigEnv('REGISTRY_TOKEN')

const kubectl = (args: string[], input?: string) => {
  const p = run('kubectl', ['--kubeconfig', rigEnv('KUBECONFIG_ADMIN'), '-n', 'deploy', ...args])
  if (input !== undefined) p.child.stdin!.end(input)
  return p
}

/** The runner's docker login to the token registry (a copy: builds write state next to it). */
function dockerConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'it-tok-action-'))
  cpSync(join(rigEnv('DOCKER_CONFIG_TOKEN'), 'config.json'), join(dir, 'config.json'))
  return dir
}

/** The output without the ::add-mask:: commands, which hand the runner each secret to hide. */
const unmasked = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n')

const deploy = (repository: string, extra: Record<string, string> = {}) =>
  runAction(
    {
      ...rigInputs(),
      'image-repository': repository,
      'model-uri': `models:/${MODEL()}/1`,
      target: 'knative',
      name: NAME,
      ...extra,
    },
    { DOCKER_CONFIG: dockerConfig() },
  )

beforeAll(async () => {
  // The cluster's pull credential for the token registry: the same user, as a dockerconfigjson Secret.
  const auth = Buffer.from(`${rigEnv('REGISTRY_TOKEN_USER')}:${rigEnv('REGISTRY_TOKEN_PASSWORD')}`).toString('base64')
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: SECRET, namespace: 'deploy' },
    type: 'kubernetes.io/dockerconfigjson',
    stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [REG()]: { auth } } }) },
  }
  await kubectl(['apply', '-f', '-'], JSON.stringify(secret))
})

afterAll(async () => {
  await kubectl(['delete', 'ksvc', NAME, '--ignore-not-found', '--wait=false']).catch(() => undefined)
  await kubectl(['delete', 'secret', SECRET, '--ignore-not-found']).catch(() => undefined)
})

test('a repository outside the user’s scope: the plan fails in one line naming it and the missing scope, nothing built', async () => {
  const r = await deploy(`${REG()}/other/e2e-wine-tok-${RUN}`)
  expect(r.status).not.toBe(0)
  expect(r.errors.join('\n')).toMatch(
    new RegExp(
      `registry ${REG().replace(/\./g, '\\.')} refused repository:other/e2e-wine-tok-${RUN}:pull \\(insufficient_scope\\): .*: use a credential with pull access to other/e2e-wine-tok-${RUN}`,
    ),
  )
  expect(r.stdout).not.toMatch(/built and pushed/)
  expect(unmasked(r.stdout)).not.toContain(rigEnv('REGISTRY_TOKEN_PASSWORD'))
})

test('the user’s own repository: push access checked, built, pushed, pulled by the node with an imagePullSecret, smoke-tested', async () => {
  const repository = `${REG()}/${rigEnv('REGISTRY_TOKEN_USER')}/e2e-wine-tok-${RUN}`
  const r = await deploy(repository, { 'image-pull-secrets': SECRET })
  expectSuccess(r)
  expect(r.outputs['image']).toMatch(new RegExp(`^${repository.replace(/\./g, '\\.')}@sha256:`))
  expect(r.outputs['cache-hit']).toBe('false')
  expect(r.stdout).toContain('smoke test: passed')
  expect(await predict(r.outputs['url']!, NAME)).toEqual(pyfuncPrediction('1'))
  expect(unmasked(r.stdout)).not.toContain(rigEnv('REGISTRY_TOKEN_PASSWORD'))

  // Again: the image is found in the token registry, nothing is built.
  const again = await deploy(repository, { 'image-pull-secrets': SECRET })
  expectSuccess(again)
  expect(again.outputs['cache-hit']).toBe('true')
  expect(again.outputs['image']).toBe(r.outputs['image'])
})
