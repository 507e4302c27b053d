// The whole action, bundled, run as GitHub runs it, against the real rig: MLflow, registry,
// buildx, kube-apiserver, the real Knative Serving and KServe controllers on the rig's node, and
// Envoy as the ingress the runner reaches (ingress-address).
// With the restricted deployer kubeconfig.
import { ServingCluster } from '../../../src/k8s/index.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { fixtureModel } from '../k8s/fixtures.js'
import { predictorPods, pyfuncPredictions, v2Predictions } from '../k8s/kserve-helpers.js'
import { rigEnv } from '../rig-env.js'
import { predict, pyfuncPrediction, rigInputs, runAction, type ActionRun, expectSuccess } from './run-action.js'

const MODEL = () => rigEnv('FIXTURE_MODEL')

async function mlflowGet(path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${rigEnv('MLFLOW_URI')}/api/2.0/mlflow/${path}`)
  return (await res.json()) as Record<string, unknown>
}

describe('knative: deploy, reuse, update, render, promote, delete', () => {
  const name = 'e2e-wine-kn'
  const deploy = (version: string, extra: Record<string, string> = {}) =>
    runAction({ ...rigInputs(), 'model-uri': `models:/${MODEL()}/${version}`, target: 'knative', name, ...extra })

  afterAll(async () => {
    await runAction({ ...rigInputs(), 'model-uri': `models:/${MODEL()}/1`, action: 'delete', name })
  })

  let first: ActionRun
  test('first deploy of v1: builds, applies, waits, smoke-tests and answers', async () => {
    first = await deploy('1')
    expectSuccess(first)
    const o = first.outputs
    expect(o['model-version']).toBe('1')
    expect(o['revision']).toMatch(new RegExp(`^${name}-\\d{5}$`))
    expect(o['image']).toMatch(/^127\.0\.0\.1:5001\/e2e-wine@sha256:[0-9a-f]{64}$/)
    expect(o['image']).toBe(`127.0.0.1:5001/e2e-wine@${o['digest']}`)
    expect(o['url']).toBe(`http://${name}.deploy.${rigEnv('KNATIVE_DOMAIN')}`)
    expect(first.stdout).toContain('smoke test: passed')
    expect(first.summary).toContain('| smoke test | ✅ ok |')
    expect(await predict(o['url']!, name)).toEqual(pyfuncPrediction('1'))
  })

  test('the same version again: image cache hit, no build, no download, same revision', async () => {
    const again = await deploy('1')
    expectSuccess(again)
    expect(again.outputs['cache-hit']).toBe('true')
    expect(again.outputs['digest']).toBe(first.outputs['digest'])
    expect(again.outputs['revision']).toBe(first.outputs['revision'])
    expect(again.stdout).toContain('build image: cache hit')
    expect(again.stdout).not.toContain('model files downloaded')
    expect(again.stdout).toContain('apply: unchanged')
  })

  test('v2: a new image digest and a new revision that answers', async () => {
    const v2 = await deploy('2')
    expectSuccess(v2)
    expect(v2.outputs['model-version']).toBe('2')
    expect(v2.outputs['digest']).not.toBe(first.outputs['digest'])
    expect(v2.outputs['revision']).not.toBe(first.outputs['revision'])
    expect(await predict(v2.outputs['url']!, name)).toEqual(pyfuncPrediction('2'))
  })

  test('render writes the manifest and touches no cluster', async () => {
    // A kubeconfig that cannot load: render must not need one.
    const r = await runAction(
      { ...rigInputs(), 'model-uri': `models:/${MODEL()}/1`, target: 'knative', name, action: 'render' },
      { KUBECONFIG: '/nonexistent-kubeconfig' },
    )
    expectSuccess(r)
    expect(r.outputs['manifest']).toContain('kind: Service')
    expect(r.outputs['manifest']).toContain(`image: 127.0.0.1:5001/e2e-wine@${first.outputs['digest']}`)
    expect(r.stdout).not.toContain('::group::apply')
  })

  test('promote-alias sets the alias and tags the version with where it runs', async () => {
    const p = await deploy('2', { 'promote-alias': 'e2e-live' })
    expectSuccess(p)
    const byAlias = (await mlflowGet(`registered-models/alias?name=${MODEL()}&alias=e2e-live`)) as {
      model_version: { version: string; tags?: { key: string; value: string }[] }
    }
    expect(byAlias.model_version.version).toBe('2')
    const tags = Object.fromEntries((byAlias.model_version.tags ?? []).map((t) => [t.key, t.value]))
    expect(tags['mlflow-k8s-deploy.url']).toBe(p.outputs['url'])
    expect(tags['mlflow-k8s-deploy.image-digest']).toBe(p.outputs['digest'])
  })

  test('delete removes it; a second delete is a no-op', async () => {
    const d = await deploy('1', { action: 'delete' })
    expectSuccess(d)
    expect(d.stdout).toContain(`delete: deleted deploy/${name}`)
    const again = await deploy('1', { action: 'delete' })
    expectSuccess(again)
    expect(again.stdout).toContain('nothing to delete')
  })
})

describe('knative traffic: stage behind a tag, split, roll back, promote', () => {
  const name = 'e2e-traffic'
  const deploy = (version: string, extra: Record<string, string> = {}) =>
    runAction({ ...rigInputs(), 'model-uri': `models:/${MODEL()}/${version}`, target: 'knative', name, ...extra })
  const trafficAfter = (run: ActionRun) => /\| Traffic after \| (.*) \|/.exec(run.summary)?.[1]

  afterAll(async () => {
    await deploy('1', { action: 'delete' })
  })

  test('nothing moves unless the inputs say so; every step is visible in the summary', async () => {
    const v1 = await deploy('1')
    expectSuccess(v1)
    const r1 = v1.outputs['revision']!

    // Staged: v2 gets its own tag URL and no traffic; the smoke test calls the tag URL.
    const staged = await deploy('2', { tag: 'candidate', 'traffic-percent': '0' })
    expectSuccess(staged)
    const r2 = staged.outputs['revision']!
    expect(r2).not.toBe(r1)
    expect(trafficAfter(staged)).toBe(`${r2} 0% (tag candidate), ${r1} 100%`)
    expect(staged.outputs['url']).not.toBe(v1.outputs['url'])
    expect(await predict(staged.outputs['url']!, name)).toEqual(pyfuncPrediction('2'))

    const split = await deploy('2', { 'traffic-percent': '50' })
    expectSuccess(split)
    // A split without a tag: the action tags the new revision so the smoke test reaches it alone.
    expect(trafficAfter(split)).toBe(`${r2} 50% (tag candidate), ${r1} 50%`)
    expect(split.stdout).toContain(`smoke test: POST http://candidate-${name}.`)
    expect(split.outputs['url']).toBe(v1.outputs['url'])

    const back = await deploy('2', { 'traffic-percent': '0' })
    expectSuccess(back)
    expect(trafficAfter(back)).toBe(`${r2} 0% (tag candidate), ${r1} 100%`)

    const promoted = await deploy('2', { 'traffic-percent': '100' })
    expectSuccess(promoted)
    expect(trafficAfter(promoted)).toBe(`${r2} 100%`)
    expect(promoted.outputs['revision']).toBe(r2)
  })
})

describe('kserve', () => {
  test('MLflow runtime on the real KServe (cluster default Standard): storageUri on S3, no image built, pods answer like pyfunc', async () => {
    const name = 'e2e-wine-ks'
    const inputs = {
      'tracking-uri': rigEnv('MLFLOW_URI'),
      'model-uri': `models:/${MODEL()}@champion`,
      target: 'kserve',
      serving: 'mlflow-runtime',
      'artifacts-destination': rigEnv('KSERVE_ARTIFACTS_DESTINATION'),
      name,
      namespace: 'deploy',
      timeout: '4m',
    }
    try {
      // A first pull of the runtime and storage-initializer images onto the node takes a while.
      const r = await runAction(inputs, {}, { killAfterMs: 270_000 })
      expectSuccess(r)
      expect(r.outputs['image']).toBeUndefined()
      expect(r.outputs['manifest']).toContain(`storageUri: ${rigEnv('KSERVE_ARTIFACTS_DESTINATION')}/`)
      expect(r.outputs['manifest']).toContain('protocolVersion: v2')
      expect(r.stdout).toContain('Standard mode: the smoke test calls the predictor Service at')
      const kube = ServingCluster.connect(
        { kubeconfig: { path: rigEnv('KUBECONFIG_ADMIN') }, kubeContext: undefined },
        new MemoryLogger(),
      ).kube
      const pods = await predictorPods(kube, 'deploy', name)
      expect(pods.map((p) => p.status?.['phase'])).toContain('Running')
      const model = await fixtureModel(r.outputs['model-version']!)
      expect(await v2Predictions(r.outputs['url']!, name, model)).toEqual(await pyfuncPredictions(model.dir))
    } finally {
      await runAction({ ...inputs, action: 'delete' }, {}, { killAfterMs: 270_000 })
    }
  }, 600_000)
})

describe('authentication end to end', () => {
  test("the job's GitHub OIDC token, fetched by @actions/core and exchanged at the IdP, reads the OIDC-protected MLflow", async () => {
    const r = await runAction(
      {
        ...rigInputs(),
        action: 'render',
        'model-uri': `models:/${MODEL()}@champion`,
        'tracking-uri': rigEnv('MLFLOW_OIDC_URI'),
        'oidc-issuer': rigEnv('OIDC_ISSUER'),
        'oidc-audience': rigEnv('OIDC_AUDIENCE'),
        'oidc-github-token': 'token-exchange',
        name: 'e2e-oidc',
      },
      {
        ACTIONS_ID_TOKEN_REQUEST_URL: rigEnv('GHA_ID_TOKEN_REQUEST_URL'),
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: rigEnv('GHA_ID_TOKEN_REQUEST_TOKEN'),
      },
    )
    expectSuccess(r)
    expect(r.outputs['model-version']).toBe('1')
    expect(r.stdout).toMatch(
      /resolving models:\/wine-classifier@champion at http:\/\/127\.0\.0\.1:5052 \(.*token-exchange/,
    )
    // The ID token and the exchanged access token are masked before anything could print them.
    expect(r.stdout.match(/^::add-mask::/gm)?.length).toBeGreaterThanOrEqual(2)
  })

  test('without id-token permission the step says which permission to add', async () => {
    const r = await runAction({
      ...rigInputs(),
      action: 'render',
      'model-uri': `models:/${MODEL()}@champion`,
      'tracking-uri': rigEnv('MLFLOW_OIDC_URI'),
      'oidc-issuer': rigEnv('OIDC_ISSUER'),
      'oidc-github-token': 'token-exchange',
      name: 'e2e-oidc',
    })
    expect(r.status).not.toBe(0)
    expect(r.errors).toHaveLength(1)
    expect(r.errors[0]).toContain('permissions: id-token: write')
  })
})

describe('bad input and faults end to end', () => {
  test('an alias MLflow refuses: the deployment stands and the step says the alias was not set', async () => {
    const name = 'e2e-promote-refused'
    const inputs = {
      ...rigInputs(),
      'tracking-uri': rigEnv('MLFLOW_BASIC_URI'),
      'mlflow-username': rigEnv('MLFLOW_BASIC_READER_USER'),
      'mlflow-password': rigEnv('MLFLOW_BASIC_READER_PASSWORD'),
      'model-uri': `models:/${MODEL()}/1`,
      name,
    }
    try {
      const r = await runAction({ ...inputs, 'promote-alias': 'e2e-refused' })
      expect(r.status).not.toBe(0)
      expect(r.errors).toHaveLength(1)
      expect(r.errors[0]).toMatch(
        /^::error::promote: the deployment stands, but alias "e2e-refused" was not set on wine-classifier v1: .*403.*"rig-reader".*grant that identity EDIT/,
      )
      // Masked as the runner is told to (::add-mask::), and nowhere else.
      expect(r.stdout.replace(/^::add-mask::.*$/gm, '')).not.toContain(rigEnv('MLFLOW_BASIC_READER_PASSWORD'))
      // Still serving: the smoke test passed before the promotion was tried.
      expect(r.summary).toContain('| smoke test | ✅ ok |')
      expect(await predict(r.outputs['url']!, name)).toEqual(pyfuncPrediction('1'))
    } finally {
      await runAction({ ...inputs, action: 'delete' })
    }
  })

  test('an unknown alias lists the ones that exist', async () => {
    const r = await runAction({ ...rigInputs(), 'model-uri': `models:/${MODEL()}@nope`, name: 'e2e-nope' })
    expect(r.status).not.toBe(0)
    expect(r.errors).toHaveLength(1)
    expect(r.errors[0]).toMatch(/^::error::resolve model: .*nope.*champion/)
  })

  test('RBAC: the restricted deployer is refused in a forbidden namespace with a clear message', async () => {
    const r = await runAction({
      ...rigInputs(),
      'model-uri': `models:/${MODEL()}/1`,
      name: 'e2e-forbidden',
      namespace: rigEnv('KUBE_FORBIDDEN_NAMESPACE'),
    })
    expect(r.status).not.toBe(0)
    // Found by the plan phase, before any build or apply.
    expect(r.errors[0]).toMatch(
      /^::error::check cluster: the cluster identity may not get, create, patch, list, watch services\.serving\.knative\.dev in namespace forbidden/,
    )
  })
})
