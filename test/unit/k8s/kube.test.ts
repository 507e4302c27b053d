import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  aboutObject,
  KNATIVE_SERVICE,
  Kube,
  kubeApiError,
  unreachable,
  type KubeRequest,
  type KubeResponse,
  type KubeTransport,
} from '../../../src/k8s/kube.js'
import { loadKubeconfig } from '../../../src/k8s/kubeconfig.js'
import { applyManifest } from '../../../src/k8s/rollout.js'
import { systemClock } from '../../../src/util/clock.js'
import { MemoryLogger } from '../../support/memory-logger.js'

const who = { server: 'https://k.example:6443', user: 'ci' }
const target = { kind: KNATIVE_SERVICE, namespace: 'models', name: 'wine' }

describe('apiserver answers, worded', () => {
  test.each<[string, KubeResponse, string, string]>([
    [
      'RBAC names verb, resource, namespace and the user the server saw',
      {
        status: 403,
        body: {
          kind: 'Status',
          reason: 'Forbidden',
          message:
            'services.serving.knative.dev "wine" is forbidden: User "system:serviceaccount:ci:deployer" cannot patch resource "services" in API group "serving.knative.dev" in the namespace "models"',
        },
      },
      'patch',
      'RBAC forbids "system:serviceaccount:ci:deployer" to patch services.serving.knative.dev in namespace "models"',
    ],
    [
      'namespace missing',
      {
        status: 404,
        body: {
          reason: 'NotFound',
          message: 'namespaces "models" not found',
          details: { name: 'models', kind: 'namespaces' },
        },
      },
      'patch',
      'namespace "models" does not exist: create it first (the action does not create namespaces)',
    ],
    [
      'bad credentials',
      { status: 401, body: { reason: 'Unauthorized', message: 'Unauthorized' } },
      'get',
      'rejected the credentials of user "ci" (401 Unauthorized)',
    ],
    [
      'strict field validation',
      { status: 400, body: { reason: 'BadRequest', message: 'strict decoding error: unknown field "spec.foo"' } },
      'patch',
      'the API server refused to patch Service models/wine: 400 BadRequest: strict decoding error: unknown field "spec.foo"',
    ],
  ])('%s', (...[, res, verb, message]) => {
    expect(kubeApiError(res, verb, target, who).message).toContain(message)
  })

  test('connection failures: TLS and unreachable, no credentials', () => {
    expect(
      unreachable(who.server, { code: 'UND_ERR_CONNECT', cause: { code: 'SELF_SIGNED_CERT_IN_CHAIN' } }).message,
    ).toBe(
      "TLS with the Kubernetes API server https://k.example:6443 failed (SELF_SIGNED_CERT_IN_CHAIN): check the cluster's certificate-authority in the kubeconfig",
    )
    expect(unreachable(who.server, { cause: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' } }).message).toBe(
      'the Kubernetes API server https://k.example:6443 is unreachable (ECONNREFUSED: connect ECONNREFUSED)',
    )
  })
})

/** A transport answering from a routing table; records requests. */
function fake(routes: Record<string, KubeResponse>) {
  const requests: KubeRequest[] = []
  const transport: KubeTransport = {
    ...who,
    async request(req) {
      requests.push(req)
      return routes[`${req.method} ${req.path}`] ?? { status: 404, body: { reason: 'NotFound', message: 'not found' } }
    },
    watch: async () => undefined,
  }
  return { transport, requests }
}

const discovery = {
  'GET /apis/serving.knative.dev/v1': { status: 200, body: { resources: [{ name: 'services', kind: 'Service' }] } },
}
const path = '/apis/serving.knative.dev/v1/namespaces/models/services/wine'
const manifest = {
  apiVersion: 'serving.knative.dev/v1',
  kind: 'Service',
  metadata: { name: 'wine', namespace: 'models' },
}

describe('Kube', () => {
  test('CRD not installed: the product is named', async () => {
    const kube = new Kube(fake({}).transport, new MemoryLogger())
    await expect(kube.get(KNATIVE_SERVICE, 'models', 'wine')).rejects.toThrow(
      'Knative Serving is not installed in the cluster (no serving.knative.dev/v1 Service)',
    )
  })

  test('refuses to take over an object it does not manage, unless asked', async () => {
    const existing = {
      status: 200,
      body: { ...manifest, metadata: { ...manifest.metadata, labels: { 'app.kubernetes.io/managed-by': 'helm' } } },
    }
    const { transport, requests } = fake({
      ...discovery,
      [`GET ${path}`]: existing,
      [`PATCH ${path}`]: { status: 200, body: manifest },
    })
    const kube = new Kube(transport, new MemoryLogger())
    await expect(kube.apply(manifest)).rejects.toThrow(
      'Service models/wine exists but is not managed by mlflow-k8s-deploy (label app.kubernetes.io/managed-by=helm); refusing to update it',
    )
    expect(requests.some((r) => r.method === 'PATCH')).toBe(false)
    await kube.apply(manifest, { takeOver: true })
    const patch = requests.find((r) => r.method === 'PATCH')!
    expect(patch.query).toMatchObject({ fieldManager: 'mlflow-k8s-deploy', force: 'true', fieldValidation: 'Strict' })
    expect(patch.contentType).toBe('application/apply-patch+yaml')
  })

  test('an apply through the rollout reads the object once (the read that decides traffic also checks ownership)', async () => {
    const managed = {
      ...manifest,
      metadata: {
        ...manifest.metadata,
        labels: { 'app.kubernetes.io/managed-by': 'mlflow-k8s-deploy' },
        generation: 1,
      },
    }
    const { transport, requests } = fake({
      ...discovery,
      [`GET ${path}`]: { status: 200, body: managed },
      [`PATCH ${path}`]: { status: 200, body: managed },
    })
    const log = new MemoryLogger()
    await applyManifest({ kube: new Kube(transport, log), log, clock: systemClock }, manifest)
    expect(requests.filter((r) => r.method === 'GET' && r.path === path)).toHaveLength(1)
    expect(requests.filter((r) => r.method === 'PATCH')).toHaveLength(1)
  })

  test('delete is idempotent', async () => {
    const kube = new Kube(fake(discovery).transport, new MemoryLogger())
    expect(await kube.delete(KNATIVE_SERVICE, 'models', 'wine')).toBe('absent')
  })

  test('delete returns the uid it deleted, so the wait for "gone" cannot mistake a successor for it', async () => {
    const managed = {
      ...manifest,
      metadata: { ...manifest.metadata, uid: 'uid-1', labels: { 'app.kubernetes.io/managed-by': 'mlflow-k8s-deploy' } },
    }
    const { transport, requests } = fake({
      ...discovery,
      [`GET ${path}`]: { status: 200, body: managed },
      [`DELETE ${path}`]: { status: 200, body: {} },
    })
    expect(await new Kube(transport, new MemoryLogger()).delete(KNATIVE_SERVICE, 'models', 'wine')).toEqual({
      deleted: 'uid-1',
    })
    expect(JSON.parse(requests.find((r) => r.method === 'DELETE')!.body!)).toMatchObject({
      preconditions: { uid: 'uid-1' },
    })
  })

  test('events: the object and its children, newest first; a sibling preview is not a child', async () => {
    const ev = (kind: string, name: string, t: string, reason: string) => ({
      involvedObject: { kind, name },
      lastTimestamp: t,
      type: 'Warning',
      reason,
      message: 'm',
    })
    const { transport } = fake({
      'GET /api/v1/namespaces/models/events': {
        status: 200,
        body: {
          items: [
            ev('Revision', 'wine-00002', '2026-01-01T00:00:02Z', 'B'),
            ev('Service', 'other', '2026-01-01T00:00:00Z', 'X'),
            ev('Service', 'wine-pr-1', '2026-01-01T00:00:09Z', 'Sibling'),
            ev('Revision', 'wine-pr-1-00001', '2026-01-01T00:00:09Z', 'Sibling'),
            ev('Service', 'wine', '2026-01-01T00:00:01Z', 'A'),
            ev('Pod', 'wine-00002-deployment-5d9c-x7k2', '2026-01-01T00:00:03Z', 'C'),
          ],
        },
      },
    })
    const lines = await new Kube(transport, new MemoryLogger()).events(KNATIVE_SERVICE, 'models', 'wine')
    expect(lines).toEqual([
      '2026-01-01T00:00:03Z Warning C Pod/wine-00002-deployment-5d9c-x7k2: m',
      '2026-01-01T00:00:02Z Warning B Revision/wine-00002: m',
      '2026-01-01T00:00:01Z Warning A Service/wine: m',
    ])
  })

  test.each([
    ['wine', 'wine', true],
    ['wine', 'wine-00001', true],
    ['wine', 'wine-00001-deployment-abc', true],
    ['wine', 'wine-predictor', true],
    ['wine', 'wine-predictor-00001-deployment-x', true],
    ['wine', 'wine-pr-1', false],
    ['wine', 'wine-pr-1-00001', false],
    ['wine', 'winery', false],
    ['wine', 'wine-2', false],
  ])('events of %s include %s: %s', (name, involved, expected) => {
    expect(aboutObject(name, involved)).toBe(expected)
  })
})

describe('loadKubeconfig', () => {
  const config = (token: string) => `apiVersion: v1
kind: Config
clusters:
  - name: a
    cluster: {server: https://a.example:6443}
  - name: b
    cluster: {server: https://b.example:6443}
users:
  - name: u
    user: {token: ${token}}
contexts:
  - name: ctx-a
    context: {cluster: a, user: u}
  - name: ctx-b
    context: {cluster: b, user: u}
current-context: ctx-a
`
  const env = { HOME: '/nonexistent' }

  test('content, with kube-context chosen', () => {
    const k = loadKubeconfig({ kubeconfig: { content: config('s3cret') }, kubeContext: 'ctx-b' }, env)
    expect({ origin: k.origin, context: k.context, server: k.server }).toEqual({
      origin: 'the kubeconfig input',
      context: 'ctx-b',
      server: 'https://b.example:6443',
    })
  })

  test('an unknown context lists the ones that exist, never the content', () => {
    const run = () => loadKubeconfig({ kubeconfig: { content: config('s3cret') }, kubeContext: 'prod' }, env)
    expect(run).toThrow('kube-context "prod" is not in the kubeconfig input; its contexts are: ctx-a, ctx-b')
  })

  test('KUBECONFIG path, else nothing: a clear message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-'))
    writeFileSync(join(dir, 'config'), config('t'))
    expect(
      loadKubeconfig({ kubeconfig: undefined, kubeContext: undefined }, { ...env, KUBECONFIG: join(dir, 'config') })
        .context,
    ).toBe('ctx-a')
    expect(() => loadKubeconfig({ kubeconfig: { path: join(dir, 'missing') }, kubeContext: undefined }, env)).toThrow(
      /cannot read kubeconfig .*missing: file not found/,
    )
    expect(() => loadKubeconfig({ kubeconfig: undefined, kubeContext: undefined }, env)).toThrow(
      'no Kubernetes configuration: set the kubeconfig input (content or path) or KUBECONFIG, or run inside the cluster',
    )
  })

  test('invalid content: the error does not echo it', () => {
    let message = ''
    try {
      loadKubeconfig({ kubeconfig: { content: 'token: s3cret: [' }, kubeContext: undefined }, env)
    } catch (e) {
      message = (e as Error).message
    }
    expect(message).toContain('not a valid kubeconfig')
    expect(message).not.toContain('s3cret')
  })
})
