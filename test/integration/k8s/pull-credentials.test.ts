// Pull credentials and identity on the real node: the serving image lives only in the rig's
// authenticated registry (htpasswd Basic auth), for which neither containerd nor the kubelet has
// credentials of its own; only a pod's imagePullSecrets open it. Through the bundled action, in a
// namespace of this suite's own where the deployer may also read pods, secrets and serviceaccounts.
import { cpSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KNATIVE_SERVICE, Kube, KubeConfigTransport, POD } from '../../../src/k8s/kube.js'
import { loadKubeconfig } from '../../../src/k8s/kubeconfig.js'
import type { KubeObject } from '../../../src/k8s/readiness.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import {
  call,
  predict,
  pyfuncPrediction,
  rigInputs,
  runAction,
  type ActionRun,
  expectSuccess,
} from '../action/run-action.js'
import { rigEnv } from '../rig-env.js'

const RUN = Date.now().toString(36)
const NS = `it-pullcreds-${RUN}`
const MODEL = () => rigEnv('FIXTURE_MODEL')
const SECRET = 'rig-auth-pull'
const ACCOUNT = 'wine-runner'

const admin = () =>
  new KubeConfigTransport(
    loadKubeconfig({ kubeconfig: { path: rigEnv('KUBECONFIG_ADMIN') }, kubeContext: undefined }).config,
  )
const adminKube = () => new Kube(admin(), new MemoryLogger())

async function post(path: string, body: object): Promise<void> {
  const res = await admin().request({
    method: 'POST',
    path,
    contentType: 'application/json',
    body: JSON.stringify(body),
  })
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`)
}

/** The runner's docker login to the auth registry (a copy: builds write state next to it). */
function dockerConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pullcreds-docker-'))
  cpSync(join(rigEnv('DOCKER_CONFIG_AUTH'), 'config.json'), join(dir, 'config.json'))
  return dir
}

/** Deploy inputs for an image repository in the auth registry, new per run: no node has it yet. */
function inputs(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...rigInputs(),
    'image-repository': `${rigEnv('REGISTRY_AUTH')}/it-pullcreds-${RUN}`,
    'model-uri': `models:/${MODEL()}/1`,
    target: 'knative',
    namespace: NS,
    name,
    ...extra,
  }
}

const deploy = (name: string, extra: Record<string, string> = {}) =>
  runAction(inputs(name, extra), { DOCKER_CONFIG: dockerConfig() })

beforeAll(async () => {
  await post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } })
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}`
  const bind = (kind: 'ClusterRole' | 'Role', name: string) =>
    post(`${rbac}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'deployer' }],
    })
  await bind('ClusterRole', 'rig-deployer')
  // As in `deploy`: pods (pull errors in seconds) and KServe Standard mode's Deployment and Service.
  await bind('ClusterRole', 'rig-deployer-kserve-standard')
  // And what the plan's checks read.
  await post(`${rbac}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'pull-credentials' },
    rules: [{ apiGroups: [''], resources: ['secrets', 'serviceaccounts'], verbs: ['get'] }],
  })
  await bind('Role', 'pull-credentials')
  const auth = Buffer.from(`${rigEnv('REGISTRY_AUTH_USER')}:${rigEnv('REGISTRY_AUTH_PASSWORD')}`).toString('base64')
  await post(`/api/v1/namespaces/${NS}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: SECRET },
    type: 'kubernetes.io/dockerconfigjson',
    stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [rigEnv('REGISTRY_AUTH')]: { auth } } }) },
  })
  await post(`/api/v1/namespaces/${NS}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'opaque-creds' },
    type: 'Opaque',
    stringData: { password: 'not-a-docker-config' },
  })
  await post(`/api/v1/namespaces/${NS}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: ACCOUNT },
  })
})

afterAll(async () => {
  await admin().request({ method: 'DELETE', path: `/api/v1/namespaces/${NS}` })
})

describe('knative: an image in the authenticated registry', () => {
  const name = 'pc-wine'
  let serving: Record<string, string> = {}

  test('without image-pull-secrets: the deploy fails on the pull, naming the refusal, and nothing serves', async () => {
    const failed = await deploy(name)
    expect(failed.status).not.toBe(0)
    expect(failed.stdout).toContain('build image') // the image was pushed: only the node lacks credentials
    const error = failed.errors.join('\n')
    expect(error).toMatch(/ImagePullBackOff|ErrImagePull/)
    expect(error).toContain(`${rigEnv('REGISTRY_AUTH')}/it-pullcreds-${RUN}@sha256:`)
    // containerd's words for the registry's 401 (Basic challenge) to a pull without credentials.
    expect(error).toMatch(/pull access denied, .*: authorization failed: no basic auth credentials/)

    const ksvc = await adminKube().get(KNATIVE_SERVICE, NS, name)
    const ready = (ksvc?.status?.['conditions'] as { type: string; status: string }[] | undefined)?.find(
      (c) => c.type === 'Ready',
    )
    expect(ready?.status).not.toBe('True')
    expect(ksvc?.status?.['traffic'] ?? []).toEqual([])
    const res = await call(`http://${name}.${NS}.${rigEnv('KNATIVE_DOMAIN')}/v2/health/ready`)
    expect(res.status).not.toBe(200)
  })

  test('with the Secret in image-pull-secrets and a service-account: Ready, smoke-tested, the pod runs as that account', async () => {
    const r = await deploy(name, { 'image-pull-secrets': SECRET, 'service-account': ACCOUNT })
    expectSuccess(r)
    serving = r.outputs
    expect(r.stdout).toContain('smoke test: passed')
    expect(r.outputs['image']).toMatch(new RegExp(`^${rigEnv('REGISTRY_AUTH')}/it-pullcreds-${RUN}@sha256:`))
    expect(await predict(r.outputs['url']!, name)).toEqual(pyfuncPrediction('1'))

    const pods = await adminKube().readAll(POD, NS, `serving.knative.dev/revision=${r.outputs['revision']}`)
    const running = pods.filter((p: KubeObject) => p.status?.['phase'] === 'Running')
    expect(running.length).toBeGreaterThan(0)
    for (const pod of running) {
      expect(pod.spec?.['serviceAccountName']).toBe(ACCOUNT)
      expect(pod.spec?.['imagePullSecrets']).toEqual([{ name: SECRET }])
    }
  })

  test('an update that drops image-pull-secrets is refused the pull though the image is on the node; the serving revision keeps 100 %', async () => {
    const r = await deploy(name)
    expect(r.status).not.toBe(0)
    expect(r.errors.join('\n')).toMatch(/pull access denied, .*: authorization failed: no basic auth credentials/)
    const ksvc = await adminKube().get(KNATIVE_SERVICE, NS, name)
    expect(ksvc?.status?.['traffic']).toEqual([
      expect.objectContaining({ revisionName: serving['revision'], percent: 100 }),
    ])
    expect(await predict(serving['url']!, name)).toEqual(pyfuncPrediction('1'))
  })

  test('plan: a Secret that does not exist fails before anything is built or applied, in one line', async () => {
    const r = await runAction(
      { ...inputs('pc-plan'), action: 'plan', 'image-pull-secrets': `${SECRET}, no-such-secret` },
      { DOCKER_CONFIG: dockerConfig() },
    )
    expect(r.status).not.toBe(0)
    expect(r.errors).toEqual([
      `::error::check cluster: \`image-pull-secrets\`: Secret "no-such-secret" does not exist in namespace ${NS}; create it (kubectl create secret docker-registry no-such-secret --docker-server=… -n ${NS}) or correct the name`,
    ])
    expect(await adminKube().get(KNATIVE_SERVICE, NS, 'pc-plan')).toBeUndefined()
  })

  test('plan: a missing service account, and a Secret of the wrong type, fail naming their input', async () => {
    const sa = await runAction(
      { ...inputs('pc-plan'), action: 'plan', 'service-account': 'nobody' },
      { DOCKER_CONFIG: dockerConfig() },
    )
    expect(sa.errors).toEqual([
      `::error::check cluster: \`service-account\`: ServiceAccount "nobody" does not exist in namespace ${NS}; create it (kubectl create serviceaccount nobody -n ${NS}) or correct the name`,
    ])
    const opaque = await runAction(
      { ...inputs('pc-plan'), action: 'plan', 'image-pull-secrets': 'opaque-creds' },
      { DOCKER_CONFIG: dockerConfig() },
    )
    expect(opaque.errors).toEqual([
      `::error::check cluster: \`image-pull-secrets\`: Secret "opaque-creds" in ${NS} is of type Opaque; the kubelet pulls only with kubernetes.io/dockerconfigjson Secrets (kubectl create secret docker-registry)`,
    ])
  })

  test('plan where the identity may not read secrets: a warning, not a failure', async () => {
    // In `deploy` the rig's deployer has the deployer role only (no secrets, no serviceaccounts).
    // The account must exist all the same: Knative's webhook dry-runs a pod with it (see below).
    const account = `pc-runner-${RUN}`
    await post('/api/v1/namespaces/deploy/serviceaccounts', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: account },
    })
    let r: ActionRun
    try {
      r = await runAction(
        {
          ...inputs('pc-plan'),
          namespace: 'deploy',
          action: 'plan',
          'image-pull-secrets': SECRET,
          'service-account': account,
        },
        { DOCKER_CONFIG: dockerConfig() },
      )
    } finally {
      await admin().request({ method: 'DELETE', path: `/api/v1/namespaces/deploy/serviceaccounts/${account}` })
    }
    expectSuccess(r)
    expect(r.stdout).toMatch(
      /::warning::.*the cluster identity may not get secrets in deploy: image-pull-secrets not checked before the deploy/,
    )
    expect(r.stdout).toMatch(
      /::warning::.*the cluster identity may not get serviceaccounts in deploy: service-account not checked before the deploy/,
    )
    expect(r.outputs['manifest']).toContain(`serviceAccountName: ${account}`)

    // Knative's webhook validates a Service by dry-running its pod: an account that does not exist
    // is refused by Knative itself, whether or not the identity may read serviceaccounts.
    const missing = await runAction(
      { ...inputs('pc-plan'), namespace: 'deploy', action: 'plan', 'service-account': 'nobody' },
      { DOCKER_CONFIG: dockerConfig() },
    )
    expect(missing.status).not.toBe(0)
    expect(missing.errors.join('\n')).toMatch(
      /admission webhook "validation.webhook.serving.knative.dev" denied the request: .*serviceaccount "nobody" not found/,
    )
  })
})

describe('kserve (the cluster default, Standard mode): a custom container from the authenticated registry', () => {
  const name = 'pc-wine-ks'
  // The predictor Service's ClusterIP, as the existing KServe suites reach it (no ingress-address).
  const kserve = (extra: Record<string, string> = {}) => {
    // KServe's default request is a whole CPU: on the rig's 2-core node the failed pod's request
    // would leave the fixed one unschedulable (the rollout keeps the old pod until the new is up).
    const resources = '{requests: {cpu: 100m, memory: 256Mi}}'
    const { 'ingress-address': _ingress, ...rest } = inputs(name, { target: 'kserve', resources, ...extra })
    return runAction(rest, { DOCKER_CONFIG: dockerConfig() })
  }

  // After the Knative tests the image is on the node, pulled there with the Secret: the kubelet
  // still pulls again for a pod without credentials, and is refused (it records which credentials
  // pulled an image: KubeletEnsureSecretPulledImages, on in 1.36).
  test('without image-pull-secrets: the predictor cannot pull, the deploy fails naming the refusal', async () => {
    const r = await kserve()
    expect(r.status).not.toBe(0)
    const error = r.errors.join('\n')
    expect(error).toMatch(/ImagePullBackOff|ErrImagePull/)
    expect(error).toMatch(/pull access denied, .*: authorization failed: no basic auth credentials/)
  })

  test('with image-pull-secrets and service-account: Ready, smoke-tested, the predictor pods run as the account', async () => {
    const r = await kserve({ 'image-pull-secrets': SECRET, 'service-account': ACCOUNT })
    expectSuccess(r)
    expect(r.stdout).toContain('smoke test: passed')
    const pods = await adminKube().readAll(POD, NS, `serving.kserve.io/inferenceservice=${name}`)
    const running = pods.filter((p: KubeObject) => p.status?.['phase'] === 'Running')
    expect(running.length).toBeGreaterThan(0)
    for (const pod of running) {
      expect(pod.spec?.['serviceAccountName']).toBe(ACCOUNT)
      expect(pod.spec?.['imagePullSecrets']).toEqual([{ name: SECRET }])
    }
  })
})
