// The rig's Gateway API ingress, against the real parts: Contour (static Gateway mode) programming
// Envoy for the rig's Gateway, an HTTPRoute sending a Host to a pod through Envoy, on loopback as
// on the node's bridge address. A part that is not up fails these tests; nothing is skipped.
import { request } from 'node:http'
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node'
import { rigEnv } from '../rig-env.js'
import { createPodNamespace, until } from './helpers.js'

const suffix = Date.now().toString(36).slice(-5)
const NS = `rig-gateway-${suffix}`
const GW = { group: 'gateway.networking.k8s.io', version: 'v1' }

// Gateway API objects are read loosely here: the assertions say what matters.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any

let core: CoreV1Api
let custom: CustomObjectsApi

beforeAll(async () => {
  const kc = new KubeConfig()
  kc.loadFromFile(rigEnv('KUBECONFIG_ADMIN'))
  core = kc.makeApiClient(CoreV1Api)
  custom = kc.makeApiClient(CustomObjectsApi)
  await createPodNamespace(core, NS)
})

afterAll(async () => {
  await core?.deleteNamespace({ name: NS }).catch(() => undefined)
})

/** GET / at host:port with the given Host header (fetch() would not send another Host). */
function get(address: string, host: string): Promise<{ status: number; body: string }> {
  const [hostname, port] = address.split(':')
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port: Number(port), path: '/', headers: { Host: host }, timeout: 3000 }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }))
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error(`timeout: GET http://${address}/ Host ${host}`)))
    req.end()
  })
}

function split(fact: string): { namespace: string; name: string } {
  const [namespace = '', name = ''] = rigEnv(fact).split('/')
  return { namespace, name }
}

/** A status's conditions as type → status. */
const conditions = (status: Loose): Record<string, string> =>
  Object.fromEntries(((status?.conditions ?? []) as Loose[]).map((c) => [c.type, c.status]))

const ECHO = 'echo'
let echoCreated = false
/** The echo pod and its Service `echo` (port 80), once per suite. */
async function echoBackend() {
  if (echoCreated) return
  echoCreated = true
  await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: { name: ECHO, labels: { app: ECHO } },
      spec: {
        containers: [
          {
            name: 'http',
            image: rigEnv('NODE_HTTP_IMAGE'),
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
          },
        ],
        terminationGracePeriodSeconds: 1,
      },
    },
  })
  await core.createNamespacedService({
    namespace: NS,
    body: {
      metadata: { name: ECHO },
      spec: { selector: { app: ECHO }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    },
  })
}

/** An HTTPRoute `name` for `host` to the echo Service, parented on `gateway`, once Accepted. */
async function routeTo(name: string, gateway: { namespace: string; name: string }, host: string) {
  await custom.createNamespacedCustomObject({
    ...GW,
    plural: 'httproutes',
    namespace: NS,
    body: {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name },
      spec: {
        parentRefs: [{ group: GW.group, kind: 'Gateway', ...gateway }],
        hostnames: [host],
        rules: [{ backendRefs: [{ name: ECHO, port: 80 }] }],
      },
    },
  })
  const route = () => custom.getNamespacedCustomObject({ ...GW, plural: 'httproutes', namespace: NS, name })
  await until(
    `HTTPRoute ${name} Accepted with resolved refs`,
    async () => {
      const parent = ((await route()) as Loose).status?.parents?.[0]
      return conditions(parent).Accepted === 'True' && conditions(parent).ResolvedRefs === 'True'
    },
    60,
    async () => ((await route()) as Loose).status,
  )
}

/** The body of the first 200 at `address` for `host`: until the pod is ready and Envoy has the route. */
async function answer(address: string, host: string): Promise<string> {
  const reply = await until(
    `GET http://${address}/ with Host ${host}`,
    async () => {
      const r = await get(address, host)
      return r.status === 200 ? r : undefined
    },
    120,
    () => get(address, host),
  )
  return reply.body
}

describe('rig gateway', () => {
  test('the Gateway is Accepted and Programmed by Contour, with its Service as address', async () => {
    const { namespace, name } = split('GATEWAY_EXTERNAL')
    const gw: Loose = await custom.getNamespacedCustomObject({ ...GW, plural: 'gateways', namespace, name })
    expect(gw.spec.gatewayClassName).toBe(rigEnv('GATEWAY_CLASS'))
    expect(conditions(gw.status)).toMatchObject({ Accepted: 'True', Programmed: 'True' })
    expect(gw.status.listeners.map((l: Loose) => l.name)).toEqual(['http'])

    // The Service net-gateway-api probes: its endpoint is Envoy on the node's bridge address,
    // port named http; the Gateway's address is the Service's ClusterIP.
    const svc = split('GATEWAY_EXTERNAL_SERVICE')
    const eps = await core.readNamespacedEndpoints(svc)
    const subset = eps.subsets?.[0]
    expect(subset?.addresses?.map((a) => a.ip)).toEqual([rigEnv('NODE_IP')])
    expect(subset?.ports?.find((p) => p.name === 'http')?.port).toBe(
      Number(rigEnv('GATEWAY_HTTP_ADDRESS').split(':')[1]),
    )
    const service = await core.readNamespacedService(svc)
    expect(gw.status.addresses).toEqual([{ type: 'IPAddress', value: service.spec?.clusterIP }])
  })

  test('an HTTPRoute on the Gateway sends its Host to the pod, and another Host gets 404', async () => {
    const host = `echo.${NS}.rig.test`
    await echoBackend()
    const gateway = split('GATEWAY_EXTERNAL')
    await routeTo('external', gateway, host)
    // Envoy on loopback and on the node's bridge address, and the Gateway's own address (its
    // Service's ClusterIP, port 80, through kube-proxy) as a client of a load balancer would use.
    const gw: Loose = await custom.getNamespacedCustomObject({ ...GW, plural: 'gateways', ...gateway })
    const addresses = [
      rigEnv('GATEWAY_HTTP_ADDRESS'),
      rigEnv('GATEWAY_NODE_ADDRESS'),
      `${gw.status.addresses[0].value}:80`,
    ]
    for (const address of addresses) {
      expect(await answer(address, host)).toBe(ECHO) // the echo server answers with its pod's name
      expect((await get(address, `nothing.${NS}.rig.test`)).status).toBe(404)
    }
  })

  test('a cluster-local host routed on the local Gateway answers through its Service', async () => {
    // What net-gateway-api makes of a cluster-local Knative Service: an HTTPRoute for the
    // `.svc.cluster.local` name on the local Gateway, reached at the local Service.
    const host = `echo.${NS}.svc.cluster.local`
    await echoBackend()
    await routeTo('local', split('GATEWAY_LOCAL'), host)
    const service = await core.readNamespacedService(split('GATEWAY_LOCAL_SERVICE'))
    expect(await answer(`${service.spec?.clusterIP}:80`, host)).toBe(ECHO)
  })
})
