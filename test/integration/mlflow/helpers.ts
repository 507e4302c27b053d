// Building the action's MLflow facade against the rig servers, and asking MLflow's own Python
// client the same questions for cross-checks.
import { mlflowInputs } from '../../support/fixtures.js'
import { execFile } from 'node:child_process'
import type { MlflowInputs } from '../../../src/inputs.js'
import { firstLine } from '../../../src/mlflow/errors.js'
import { createMlflow, type Mlflow } from '../../../src/mlflow/index.js'
import { UndiciTransport, type HttpTransport } from '../../../src/util/http.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'

// jest's testTimeout is global-only (ignored in a project config): give each test its own.
export const SLOW = 120_000

export type Server = 'plain' | 'basic' | 'oidc'

export function serverUri(server: Server): string {
  return rigEnv(server === 'plain' ? 'MLFLOW_URI' : server === 'basic' ? 'MLFLOW_BASIC_URI' : 'MLFLOW_OIDC_URI')
}

export function inputs(server: Server, over: Partial<MlflowInputs> = {}): MlflowInputs {
  return mlflowInputs({ trackingUri: serverUri(server), ...over })
}

export { oidcInputs } from '../../support/fixtures.js'

/** The environment a job with `permissions: id-token: write` has, pointing at the rig's stand-in. */
export function githubEnv(): Record<string, string> {
  return {
    ACTIONS_ID_TOKEN_REQUEST_URL: rigEnv('GHA_ID_TOKEN_REQUEST_URL'),
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: rigEnv('GHA_ID_TOKEN_REQUEST_TOKEN'),
  }
}

export interface Built {
  mlflow: Mlflow
  masked: string[]
  log: MemoryLogger
  idTokenAudiences: (string | undefined)[]
  close(): Promise<void>
}

/** The facade as the action builds it; getIdToken does what @actions/core's getIDToken does. */
export function build(i: MlflowInputs, env: Record<string, string> = githubEnv()): Built {
  const masked: string[] = []
  const idTokenAudiences: (string | undefined)[] = []
  const log = new MemoryLogger()
  const http = new UndiciTransport({ caCertPath: i.caCertPath, insecureTls: i.insecureTls, env: {} })
  const mlflow = createMlflow(i, {
    http,
    env,
    log,
    mask: (s) => void masked.push(s),
    getIdToken: (audience) => {
      idTokenAudiences.push(audience)
      return fetchGithubIdToken(http, env, audience)
    },
  })
  return { mlflow, masked, log, idTokenAudiences, close: () => http.close() }
}

/**
 * Fetches a GitHub Actions ID token the way @actions/core's getIDToken does (GET the request URL
 * plus `&audience=`, bearer the request token, answer `{value}`).
 */
async function fetchGithubIdToken(
  http: HttpTransport,
  env: Readonly<Record<string, string | undefined>>,
  audience: string | undefined,
): Promise<string> {
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL
  const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN
  if (!url || !requestToken) throw new Error('Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable')
  const full = audience ? `${url}&audience=${encodeURIComponent(audience)}` : url
  const res = await http.request({
    method: 'GET',
    url: full,
    headers: { authorization: `Bearer ${requestToken}`, accept: 'application/json' },
  })
  const text = await res.text()
  const value = res.status === 200 ? (JSON.parse(text) as { value?: unknown }).value : undefined
  if (typeof value !== 'string')
    throw new Error(`ID token request failed with HTTP ${res.status}: ${firstLine(res.headers['content-type'], text)}`)
  return value
}

/** Runs a Python snippet in the rig's MLflow venv; stdout's last line parsed as JSON. */
export function python(code: string, env: Record<string, string>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(
      rigEnv('MLFLOW_PYTHON'),
      ['-c', code],
      { env: { ...process.env, MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0', ...env }, timeout: 110_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`python failed: ${stderr.trim().split('\n').slice(-3).join(' | ')}`))
        resolve(JSON.parse(stdout.trim().split('\n').pop()!))
      },
    )
  })
}

/** What MLflow's Python client resolves a URI to: name, version and the download location. */
export async function pythonResolve(uris: string[], env: Record<string, string>): Promise<Record<string, unknown>[]> {
  const code = `
import json, os
from mlflow import MlflowClient
from mlflow.store.artifact.utils.models import get_model_name_and_version
from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository
client = MlflowClient()
out = []
for uri in json.loads(os.environ["URIS"]):
    if uri.startswith("runs:/"):
        out.append({"uri": uri, "artifactUri": RunsArtifactRepository.get_underlying_uri(uri)})
        continue
    parts = get_model_name_and_version(client, uri)
    if len(parts) == 1:
        out.append({"uri": uri, "modelId": parts[0], "artifactUri": client.get_logged_model(parts[0]).artifact_location})
        continue
    name, version = parts
    out.append({"uri": uri, "name": name, "version": str(version), "artifactUri": client.get_model_version_download_uri(name, version)})
print(json.dumps(out))
`
  return (await python(code, { ...env, URIS: JSON.stringify(uris) })) as Record<string, unknown>[]
}

/** Files (path → size) MLflow's Python client downloads for a URI. */
export async function pythonFiles(uri: string, env: Record<string, string>): Promise<Record<string, number>> {
  const code = `
import json, os, tempfile
import mlflow
with tempfile.TemporaryDirectory() as d:
    root = mlflow.artifacts.download_artifacts(artifact_uri=os.environ["URI"], dst_path=d)
    out = {}
    for base, _, files in os.walk(root):
        for f in files:
            p = os.path.join(base, f)
            out[os.path.relpath(p, root)] = os.path.getsize(p)
print(json.dumps(out))
`
  return (await python(code, { ...env, URI: uri })) as Record<string, number>
}

/**
 * Deletes a registered model a test made on the plain MLflow server. The stores outlive a run, and
 * models left behind crowd the fixtures out of listings ("models there: …") in later runs.
 */
export async function deleteRegisteredModel(name: string): Promise<void> {
  const res = await fetch(`${rigEnv('MLFLOW_URI')}/api/2.0/mlflow/registered-models/delete`, {
    method: 'DELETE',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  })
  if (!res.ok && res.status !== 404) throw new Error(`deleting model ${name}: HTTP ${res.status} ${await res.text()}`)
}
