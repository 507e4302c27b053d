// Runs the committed bundle exactly as a GitHub runner does: `node dist/index.js` with INPUT_*
// variables and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, against the rig.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { request } from 'undici'
import { smokeRoute } from '../../../src/inference/route.js'
import { buildkitDockerConfig } from '../image/buildkit-builder.js'
import { rigEnv } from '../rig-env.js'
import { runDist, type ActionRun, type RunOptions } from '../../support/run-dist.js'

export type { ActionRun } from '../../support/run-dist.js'

/** The bundled action against the rig: its Docker engine and the restricted deployer kubeconfig. */
export function runAction(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  options: RunOptions = {},
): Promise<ActionRun> {
  return runDist(
    inputs,
    { DOCKER_HOST: rigEnv('DOCKER_HOST'), KUBECONFIG: rigEnv('KUBECONFIG_DEPLOYER'), ...env },
    options,
  )
}

/**
 * A suite's Knative Service `name`, deployed by the bundle with the rig's BuildKit builder as a job
 * does after docker/setup-buildx-action: the builder in a Docker config of the suite's own (made in
 * beforeAll), the rig's inputs, then `inputs`, then each deploy's `extra` (and `env`). Deleted after
 * the suite.
 */
export function buildkitService(name: string, inputs: () => Record<string, string>) {
  let dockerConfig = ''
  beforeAll(async () => {
    dockerConfig = await buildkitDockerConfig()
  })
  const deploy = (extra: Record<string, string> = {}, env: Record<string, string> = {}) =>
    runAction(
      { ...rigInputs(), builder: rigEnv('BUILDKIT_BUILDER'), target: 'knative', name, ...inputs(), ...extra },
      { DOCKER_CONFIG: dockerConfig, ...env },
    )
  afterAll(async () => {
    await deploy({ action: 'delete' })
  })
  return { deploy, dockerConfig: () => dockerConfig }
}

/** Fails the test with the action's own error lines (or its last output) unless it succeeded. */
export function expectSuccess(run: ActionRun): void {
  if (run.status !== 0)
    throw new Error(`action failed (${run.status}): ${run.errors.join(' | ') || run.stdout.slice(-2000)}`)
}

/** The rig's deploy inputs for the plain MLflow and the open registry. */
export function rigInputs(): Record<string, string> {
  return {
    'tracking-uri': rigEnv('MLFLOW_URI'),
    'image-repository': `${rigEnv('REGISTRY')}/e2e-wine`,
    // The default runtime (kserve) on the rig's kserve base.
    'base-image': rigEnv('KSERVE_BASE_IMAGE'),
    'build-network': 'host',
    namespace: 'deploy',
    timeout: '2m',
    // Status URLs name hosts under the rig's domain: the runner reaches them through Envoy.
    'ingress-address': ingressAddress(),
  }
}

/** The rig's ingress (Envoy, driven by Contour through the Gateway API) as the runner reaches it. */
export const ingressAddress = (): string => `http://${rigEnv('GATEWAY_HTTP_ADDRESS')}`

/** A row of wine data on which the fixture's v1 and v2 disagree, as its signature names the columns. */
export const probeRow = (): Record<string, number> => JSON.parse(rigEnv('FIXTURE_PROBE_ROW')) as Record<string, number>

/** What MLflow's pyfunc of that fixture version predicts for probeRow(): proves which model answered. */
export const pyfuncPrediction = (version: string): unknown => JSON.parse(rigEnv(`FIXTURE_PREDICTION_V${version}`))

/**
 * A request as users send it: to a URL under the rig's domain through the ingress with the URL's
 * host as Host (fetch cannot set Host), to any other URL (a predictor's ClusterIP) directly.
 */
export async function call(
  url: string,
  init: { method?: 'GET' | 'POST'; body?: unknown; timeoutMs?: number } = {},
): Promise<{ status: number; text: string }> {
  const target = new URL(url)
  const viaIngress = target.hostname.endsWith(`.${rigEnv('KNATIVE_DOMAIN')}`)
  const route = smokeRoute(target.origin, viaIngress ? { address: ingressAddress() } : {})
  const res = await request(`${route.baseUrl}${target.pathname}${target.search}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(route.hostHeader ? { host: route.hostHeader } : {}),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(init.timeoutMs ?? 30_000),
  })
  return { status: res.statusCode, text: await res.body.text() }
}

/** Calls the deployed endpoint the way users will: POST /v2/models/<name>/infer. */
export async function predict(url: string, model: string): Promise<unknown> {
  const body = {
    inputs: Object.entries(probeRow()).map(([name, v]) => ({ name, shape: [1], datatype: 'FP64', data: [v] })),
  }
  const res = await call(`${url}/v2/models/${model}/infer`, { method: 'POST', body })
  if (res.status >= 300) throw new Error(`infer answered ${res.status}: ${res.text}`)
  const json = JSON.parse(res.text) as { outputs: { data: unknown[] }[] }
  return json.outputs[0]?.data[0]
}

/** A Knative Service's pods in the deploy namespace: the references their containers were pulled by, and whether each is ready. */
export async function servicePods(name: string): Promise<{ images: string[]; ready: string[] }> {
  const get = async (jsonpath: string) =>
    (
      await promisify(execFile)('kubectl', [
        '--kubeconfig',
        rigEnv('KUBECONFIG_ADMIN'),
        'get',
        'pods',
        '-n',
        'deploy',
        '-l',
        `serving.knative.dev/service=${name}`,
        '-o',
        `jsonpath=${jsonpath}`,
      ])
    ).stdout
      .split('\n')
      .filter(Boolean)
  return {
    images: await get('{range .items[*].spec.containers[*]}{.image}{"\\n"}{end}'),
    ready: await get('{range .items[*].status.containerStatuses[*]}{.ready}{"\\n"}{end}'),
  }
}
