// Plan before change, through the bundled action on the rig: `action: plan` against an empty
// namespace and a live Service, every precondition failing before an image is pushed or an object
// changed (checked in the registry and the cluster afterwards), and `action: render` pushing nothing.
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KNATIVE_SERVICE, Kube, KubeConfigTransport } from '../../../src/k8s/kube.js'
import { loadKubeconfig } from '../../../src/k8s/kubeconfig.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { deleteRegisteredModel, python } from '../mlflow/helpers.js'
import { rigEnv } from '../rig-env.js'
import { rigInputs, runAction, expectSuccess } from './run-action.js'

const MODEL = () => rigEnv('FIXTURE_MODEL')
const RUN = Date.now().toString(36)

/** The tags of a repository in the rig's open registry; [] when nothing was ever pushed there. */
async function tags(repository: string): Promise<string[]> {
  const res = await fetch(`http://${rigEnv('REGISTRY')}/v2/${repository}/tags/list`)
  if (res.status === 404) return []
  const body = (await res.json()) as { tags?: string[] | null }
  return body.tags ?? []
}

/** The Knative Service as the rig's admin sees it, or undefined. */
function service(namespace: string, name: string) {
  const admin = new Kube(
    new KubeConfigTransport(
      loadKubeconfig({ kubeconfig: { path: rigEnv('KUBECONFIG_ADMIN') }, kubeContext: undefined }).config,
    ),
    new MemoryLogger(),
  )
  return admin.get(KNATIVE_SERVICE, namespace, name)
}

/** Inputs for a deploy to a repository nothing was pushed to: every plan is a cache miss. */
function fresh(name: string, extra: Record<string, string> = {}) {
  const repository = `e2e-plan-${name}-${RUN}`
  return {
    repository,
    inputs: {
      ...rigInputs(),
      'image-repository': `${rigEnv('REGISTRY')}/${repository}`,
      'model-uri': `models:/${MODEL()}/1`,
      target: 'knative',
      name: `${name}-${RUN}`,
      ...extra,
    },
  }
}

describe('action: plan', () => {
  test('against an empty namespace: what would be built and created, nothing pushed or applied', async () => {
    const { repository, inputs } = fresh('empty')
    const r = await runAction({ ...inputs, action: 'plan' })
    expectSuccess(r)
    const plan = r.outputs['plan']!
    expect(plan).toMatch(new RegExp(`^image: build ${rigEnv('REGISTRY')}/${repository}:v1-[0-9a-f]{20} \\(`))
    expect(plan).toContain(`Service deploy/${inputs.name}: does not exist yet; the deploy creates it`)
    expect(r.summary).toContain('### Plan')
    expect(r.outputs['manifest']).toMatch(/^# image .* is planned, not built yet/)
    expect(await tags(repository)).toEqual([])
    expect(await service('deploy', inputs.name)).toBeUndefined()
  })

  test('against a live Service: the diff of the fields the action sets, and nothing changes', async () => {
    const name = `e2e-plan-live-${RUN}`
    const deploy = (version: string, extra: Record<string, string> = {}) =>
      runAction({ ...rigInputs(), 'model-uri': `models:/${MODEL()}/${version}`, target: 'knative', name, ...extra })
    try {
      const v1 = await deploy('1')
      expectSuccess(v1)
      const before = await service('deploy', name)

      const same = await deploy('1', { action: 'plan' })
      expectSuccess(same)
      expect(same.outputs['plan']).toMatch(/^image: cache hit .*@sha256:[0-9a-f]{64} \(build skipped\)$/m)
      expect(same.outputs['plan']).toContain('traffic: unchanged')

      const v2 = await deploy('2', { action: 'plan', env: 'FOO: bar' })
      expectSuccess(v2)
      const plan = v2.outputs['plan']!
      expect(plan).toMatch(
        new RegExp(
          `^Service deploy/${name}: .*container image ${rigEnv('REGISTRY')}/e2e-wine@sha256:[0-9a-f]{64} → ${rigEnv('REGISTRY')}/e2e-wine(@sha256:[0-9a-f]{64}|:v2-[0-9a-f]{20}),.* env \\+FOO$`,
          'm',
        ),
      )
      expect(plan).toMatch(/^ {2}metadata\.annotations\.mlflow-k8s-deploy\/model-version: 1 → 2$/m)
      expect(plan).toContain('traffic: unchanged')
      const after = await service('deploy', name)
      expect(after?.metadata?.generation).toBe(before?.metadata?.generation)
    } finally {
      await deploy('1', { action: 'delete' })
    }
  }, 600_000)
})

describe('every precondition fails before a push or an apply', () => {
  test('a forbidden verb names what is missing', async () => {
    const { repository, inputs } = fresh('forbidden', { namespace: rigEnv('KUBE_FORBIDDEN_NAMESPACE') })
    const r = await runAction(inputs)
    expect(r.status).not.toBe(0)
    expect(r.errors).toEqual([
      expect.stringMatching(
        /^::error::check cluster: the cluster identity may not get, create, patch, list, watch services\.serving\.knative\.dev in namespace forbidden; .*grant them/,
      ),
    ])
    expect(r.stdout).not.toContain('build image: built')
    expect(await tags(repository)).toEqual([])
  })

  test('a template the schema refuses', async () => {
    const template = join(tmpdir(), `bad-template-${RUN}.yaml`)
    writeFileSync(
      template,
      'apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: $name, namespace: $namespace}\n' +
        'spec:\n  template:\n    spec:\n      containerz: [{image: $image}]\n',
    )
    const { repository, inputs } = fresh('schema', { template })
    const r = await runAction(inputs)
    expect(r.status).not.toBe(0)
    expect(r.errors[0]).toMatch(/^::error::check cluster: .*containerz: field not declared in schema/)
    expect(await tags(repository)).toEqual([])
    expect(await service('deploy', inputs.name)).toBeUndefined()
  })

  test('a model with neither an input example nor a signature', async () => {
    const model = `e2e-plan-bare-${RUN}`
    await python(
      `
import mlflow, mlflow.sklearn, json
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
X, y = load_wine(return_X_y=True)
m = LogisticRegression(max_iter=20).fit(X, y)
mlflow.sklearn.log_model(m, name="model", registered_model_name="${model}", serialization_format="cloudpickle")
print(json.dumps("ok"))
`,
      { MLFLOW_TRACKING_URI: rigEnv('MLFLOW_URI') },
    )
    const { repository, inputs } = fresh('bare', { 'model-uri': `models:/${model}/1` })
    const r = await runAction(inputs).finally(() => deleteRegisteredModel(model))
    expect(r.status).not.toBe(0)
    expect(r.errors).toEqual([
      '::error::prepare smoke test: no smoke-test request: the model has neither an input example nor a signature to build a smoke-test request from: set smoke-test-input (or smoke-test: false)',
    ])
    expect(await tags(repository)).toEqual([])
    expect(await service('deploy', inputs.name)).toBeUndefined()
  }, 300_000)

  test('promotion without the smoke test is refused before anything runs', async () => {
    const { repository, inputs } = fresh('promote', { 'promote-alias': 'e2e-never', 'smoke-test': 'false' })
    const r = await runAction(inputs)
    expect(r.status).not.toBe(0)
    expect(r.errors[0]).toMatch(/^::error::`promote-alias`: needs wait: true and smoke-test: true/)
    expect(r.stdout).not.toContain('resolve model')
    expect(await tags(repository)).toEqual([])
  })
})

test('action: render builds and pushes nothing', async () => {
  const { repository, inputs } = fresh('render')
  const r = await runAction({ ...inputs, action: 'render' }, { KUBECONFIG: '/nonexistent-kubeconfig' })
  expectSuccess(r)
  expect(r.outputs['manifest']).toMatch(
    new RegExp(`^# image ${rigEnv('REGISTRY')}/${repository}:v1-[0-9a-f]{20} is planned, not built yet`),
  )
  expect(r.outputs['manifest']).toContain(`image: ${rigEnv('REGISTRY')}/${repository}:v1-`)
  expect(r.stdout).not.toContain('build image')
  expect(await tags(repository)).toEqual([])
})

test('an identity that may deploy but not list pods is warned what it loses', async () => {
  // A namespace where the deployer has the rig's deployer role (Services, events) and nothing on pods.
  const ns = `e2e-nopods-${RUN}`
  const admin = new KubeConfigTransport(
    loadKubeconfig({ kubeconfig: { path: rigEnv('KUBECONFIG_ADMIN') }, kubeContext: undefined }).config,
  )
  const post = async (path: string, body: object) => {
    const res = await admin.request({
      method: 'POST',
      path,
      contentType: 'application/json',
      body: JSON.stringify(body),
    })
    if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`)
  }
  await post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
  try {
    await post(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'rig-deployer' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'rig-deployer' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'deployer' }],
    })
    const { inputs } = fresh('nopods', { namespace: ns, action: 'plan' })
    const r = await runAction(inputs)
    expectSuccess(r)
    expect(r.stdout).toMatch(
      new RegExp(
        `::warning::.*the cluster identity may not list pods in ${ns}: an image that cannot be pulled or a crash loop is reported only at Knative's progress deadline`,
      ),
    )
    expect(r.stdout).not.toMatch(/may not list events/)
  } finally {
    await admin.request({ method: 'DELETE', path: `/api/v1/namespaces/${ns}` })
  }
})
