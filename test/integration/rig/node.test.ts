// The rig's Kubernetes node, against the real parts: kubelet + containerd + CNI bridge, the
// controller-manager and scheduler turning a Deployment into running pods, kube-proxy routing a
// ClusterIP from the host, and pull credentials coming only from imagePullSecrets. A part that
// is not up fails these tests; nothing is skipped.
//
// RIG_RECORD_FIXTURES=1 also writes the real objects met here to test/fixtures/k8s/ (the
// readiness unit tests read them); without it the tests only assert.
import { mkdirSync, writeFileSync } from 'node:fs'
import { get, type RequestOptions } from 'node:https'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { format, resolveConfig } from 'prettier'
import { AppsV1Api, CoreV1Api, DiscoveryV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node'
import { rigEnv } from '../rig-env.js'
import { createPodNamespace, until } from './helpers.js'

const suffix = Date.now().toString(36).slice(-5)
const NS = `rig-node-${suffix}`
const LONG = 300_000
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/k8s')

let kc: KubeConfig
let core: CoreV1Api
let apps: AppsV1Api
let discovery: DiscoveryV1Api

beforeAll(async () => {
  kc = new KubeConfig()
  kc.loadFromFile(rigEnv('KUBECONFIG_ADMIN'))
  core = kc.makeApiClient(CoreV1Api)
  apps = kc.makeApiClient(AppsV1Api)
  discovery = kc.makeApiClient(DiscoveryV1Api)
  await createPodNamespace(core, NS)
})

afterAll(async () => {
  await core?.deleteNamespace({ name: NS }).catch(() => undefined)
})

async function httpText(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) })
    return res.ok ? (await res.text()).trim() : undefined
  } catch {
    return undefined
  }
}

/** With RIG_RECORD_FIXTURES set, the object as the API serves it (raw JSON, no managedFields). */
async function record(name: string, path: string) {
  if (!process.env.RIG_RECORD_FIXTURES) return
  const opts: RequestOptions = {}
  await kc.applyToHTTPSOptions(opts)
  const text = await new Promise<string>((resolve, reject) => {
    get(new URL(path, kc.getCurrentCluster()?.server), opts, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
  const object = JSON.parse(text)
  delete object.metadata.managedFields
  mkdirSync(FIXTURES, { recursive: true })
  const file = join(FIXTURES, name)
  // Formatted as the repository's prettier config wants it, so lint passes on a fresh recording.
  writeFileSync(file, await format(JSON.stringify(object), { ...(await resolveConfig(file)), filepath: file }))
}

function inPodCidr(ip: string): boolean {
  const [net = '', bits = '32'] = rigEnv('NODE_POD_CIDR').split('/')
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0)
  const mask = 2 ** 32 - 2 ** (32 - Number(bits))
  return (toInt(ip) & mask) >>> 0 === (toInt(net) & mask) >>> 0
}

function echoPod(name: string, image: string, extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      containers: [{ name: 'http', image, imagePullPolicy: 'Always', ports: [{ containerPort: 8080 }] }],
      terminationGracePeriodSeconds: 1,
      ...extra,
    },
  }
}

describe('rig node', () => {
  test('the node is registered and Ready, with the bridge address as its InternalIP', async () => {
    const node = await core.readNode({ name: rigEnv('NODE_NAME') })
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready')
    expect(ready?.status).toBe('True')
    expect(node.status?.addresses).toEqual(expect.arrayContaining([{ type: 'InternalIP', address: rigEnv('NODE_IP') }]))
    expect(node.status?.nodeInfo?.kubeletVersion).toMatch(/^v1\.36\./)
    expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//)
    expect(node.spec?.taints ?? []).toEqual([])
  })

  test(
    'a Deployment gets Available pods that answer HTTP on their pod IPs, and a ClusterIP Service routes to them',
    async () => {
      const name = 'echo'
      const labels = { app: name }
      const image = rigEnv('NODE_HTTP_IMAGE')
      await apps.createNamespacedDeployment({
        namespace: NS,
        body: {
          metadata: { name, labels },
          spec: {
            replicas: 2,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                containers: [
                  {
                    name: 'http',
                    image,
                    ports: [{ containerPort: 8080 }],
                    readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
                  },
                ],
                terminationGracePeriodSeconds: 1,
              },
            },
          },
        },
      })
      const read = () => apps.readNamespacedDeployment({ name, namespace: NS })
      await until(
        'Deployment Available with 2 replicas',
        async () => {
          const d = await read()
          const ok =
            d.status?.observedGeneration === d.metadata?.generation &&
            d.status?.availableReplicas === 2 &&
            d.status?.updatedReplicas === 2 &&
            d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True')
          return ok ? d : undefined
        },
        180,
        async () => (await read()).status,
      )
      await record('deployment-available.json', `/apis/apps/v1/namespaces/${NS}/deployments/${name}`)

      const pods = (await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${name}` })).items
      expect(pods).toHaveLength(2)
      for (const pod of pods) {
        expect(pod.status?.phase).toBe('Running')
        expect(pod.spec?.nodeName).toBe(rigEnv('NODE_NAME'))
        expect(pod.spec?.serviceAccountName).toBe('default')
        const ip = pod.status?.podIP ?? ''
        expect(inPodCidr(ip)).toBe(true)
        expect(await httpText(`http://${ip}:8080/`)).toBe(pod.metadata?.name)
      }
      // The apiserver reaches the kubelet (its client cert, the kubelet's webhook authz).
      const logs = await core.readNamespacedPodLog({ name: pods[0]?.metadata?.name ?? '', namespace: NS })
      expect(logs).toContain('listening on :8080')

      const svc = await core.createNamespacedService({
        namespace: NS,
        body: {
          metadata: { name },
          spec: { selector: labels, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] },
        },
      })
      const clusterIP = svc.spec?.clusterIP ?? ''
      expect(clusterIP).toMatch(/^10\.0\.0\.\d+$/)
      await until('an EndpointSlice with both pods ready', async () => {
        const slices = await discovery.listNamespacedEndpointSlice({
          namespace: NS,
          labelSelector: `kubernetes.io/service-name=${name}`,
        })
        const ready = slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e?.conditions?.ready)
        return ready.length === 2
      })
      const names = new Set(pods.map((p) => p.metadata?.name))
      const seen = await until(
        `GET http://${clusterIP}/ through kube-proxy`,
        async () => {
          const body = await httpText(`http://${clusterIP}:80/`)
          return body && names.has(body) ? body : undefined
        },
        60,
      )
      expect(names.has(seen)).toBe(true)
    },
    LONG,
  )

  test(
    'an image in the auth registry pulls only through an imagePullSecret',
    async () => {
      const image = rigEnv('NODE_HTTP_IMAGE_AUTH')
      const readPod = (name: string) => core.readNamespacedPod({ name, namespace: NS })

      await core.createNamespacedPod({ namespace: NS, body: echoPod('no-secret', image) })
      const waiting = await until(
        'ErrImagePull or ImagePullBackOff without a secret',
        async () => {
          const p = await readPod('no-secret')
          const reason = p.status?.containerStatuses?.[0]?.state?.waiting?.reason
          return reason === 'ErrImagePull' || reason === 'ImagePullBackOff' ? p : undefined
        },
        120,
        async () => (await readPod('no-secret')).status,
      )
      const state = waiting.status?.containerStatuses?.[0]?.state?.waiting
      expect(state?.message).toContain(image)
      expect(state?.message).toMatch(/401 Unauthorized|authorization failed|no basic auth credentials/i)
      expect(waiting.status?.phase).toBe('Pending')
      await record('pod-image-pull-unauthorized.json', `/api/v1/namespaces/${NS}/pods/no-secret`)

      const registry = rigEnv('REGISTRY_AUTH')
      const auth = Buffer.from(`${rigEnv('REGISTRY_AUTH_USER')}:${rigEnv('REGISTRY_AUTH_PASSWORD')}`).toString('base64')
      await core.createNamespacedSecret({
        namespace: NS,
        body: {
          metadata: { name: 'pull' },
          type: 'kubernetes.io/dockerconfigjson',
          stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [registry]: { auth } } }) },
        },
      })
      await core.createNamespacedPod({
        namespace: NS,
        body: echoPod('with-secret', image, { imagePullSecrets: [{ name: 'pull' }] }),
      })
      const running = await until(
        'the pod with the secret Running and ready',
        async () => {
          const p = await readPod('with-secret')
          return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined
        },
        120,
        async () => (await readPod('with-secret')).status,
      )
      expect(await httpText(`http://${running.status?.podIP}:8080/`)).toBe('with-secret')
      await record('pod-running.json', `/api/v1/namespaces/${NS}/pods/with-secret`)

      // The secret did not open the image to other pods: still refused without one.
      expect((await readPod('no-secret')).status?.containerStatuses?.[0]?.ready).toBe(false)
    },
    LONG,
  )
})
