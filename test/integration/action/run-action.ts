// Runs the committed bundle exactly as a GitHub runner does: `node dist/index.js` with INPUT_*
// variables and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, against the rig.
import { rigEnv } from '../rig-env.js'
import { runDist, type ActionRun } from '../../support/run-dist.js'

export type { ActionRun } from '../../support/run-dist.js'

/** The bundled action against the rig: its Docker engine and the restricted deployer kubeconfig. */
export function runAction(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun> {
  return runDist(inputs, { DOCKER_HOST: rigEnv('DOCKER_HOST'), KUBECONFIG: rigEnv('KUBECONFIG_DEPLOYER'), ...env })
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
    timeout: '5m',
  }
}

/** One row of wine data, as the fixture model's signature names its columns. */
export const WINE_ROW: Record<string, number> = {
  alcohol: 13.2,
  malic_acid: 1.78,
  ash: 2.14,
  alcalinity_of_ash: 11.2,
  magnesium: 100,
  total_phenols: 2.65,
  flavanoids: 2.76,
  nonflavanoid_phenols: 0.26,
  proanthocyanins: 1.28,
  color_intensity: 4.38,
  hue: 1.05,
  'od280/od315_of_diluted_wines': 3.4,
  proline: 1050,
}

/** Calls the deployed endpoint the way users will: POST /v2/models/<name>/infer. */
export async function predict(url: string, model: string): Promise<unknown> {
  const body = {
    inputs: Object.entries(WINE_ROW).map(([name, v]) => ({ name, shape: [1], datatype: 'FP64', data: [v] })),
  }
  const res = await fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`infer answered ${res.status}: ${await res.text()}`)
  const json = (await res.json()) as { outputs: { data: unknown[] }[] }
  return json.outputs[0]?.data[0]
}
