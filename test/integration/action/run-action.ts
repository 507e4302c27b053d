// Runs the committed bundle exactly as a GitHub runner does: `node dist/index.js` with INPUT_*
// variables and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, against the rig.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rigEnv } from '../rig-env.js'

const DIST = join(import.meta.dirname, '../../../dist/index.js')

export interface ActionRun {
  readonly status: number | null
  readonly stdout: string
  readonly outputs: Record<string, string>
  readonly summary: string
  readonly errors: string[]
  readonly seconds: number
}

export async function runAction(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun> {
  const dir = mkdtempSync(join(tmpdir(), 'action-'))
  const outputFile = join(dir, 'output')
  const summaryFile = join(dir, 'summary')
  writeFileSync(outputFile, '')
  writeFileSync(summaryFile, '')
  const fullEnv: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HOME: dir,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    RUNNER_TEMP: dir,
    DOCKER_HOST: rigEnv('DOCKER_HOST'),
    KUBECONFIG: rigEnv('KUBECONFIG_DEPLOYER'),
    ...env,
  }
  for (const [k, v] of Object.entries(inputs)) fullEnv[`INPUT_${k.toUpperCase()}`] = v
  const started = performance.now()
  const child = spawn(process.execPath, [DIST], { env: fullEnv })
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stdout += d.toString()))
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return {
    status,
    stdout,
    outputs: parseOutputFile(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
    errors: stdout.split('\n').filter((l) => l.startsWith('::error::')),
    seconds: (performance.now() - started) / 1000,
  }
}

/** GITHUB_OUTPUT uses `name<<DELIMITER\nvalue\nDELIMITER` blocks. */
function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of text.matchAll(/^([\w-]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) out[m[1]!] = m[3]!
  return out
}

/** The rig's deploy inputs for the plain MLflow and the open registry. */
export function rigInputs(): Record<string, string> {
  return {
    'tracking-uri': rigEnv('MLFLOW_URI'),
    'image-repository': `${rigEnv('REGISTRY')}/e2e-wine`,
    'base-image': rigEnv('BASE_IMAGE'),
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
