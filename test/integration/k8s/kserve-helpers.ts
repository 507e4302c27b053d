// What the KServe suites need besides the action's own code: the model files in the rig's S3 (the
// plain MLflow server's artifact store served as bucket mlflow-artifacts), MLflow pyfunc's own
// predictions to compare with, the pods the API lists, and (RECORD_KSERVE_FIXTURES=1) snapshots of
// the real objects written to test/fixtures/k8s/kserve/ for the unit tests.
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { POD, SERVICE, type Kube } from '../../../src/k8s/kube.js'
import type { KubeObject } from '../../../src/k8s/readiness.js'
import { readPredictor } from '../../../src/k8s/rollout-watch.js'
import { predictorName, type PredictorSnapshot } from '../../../src/k8s/standard.js'
import { buildV2Request } from '../../../src/inference/request.js'
import { storageUriFor } from '../../../src/mlflow/storage-uri.js'
import { rigEnv } from '../rig-env.js'
import { call } from '../action/run-action.js'
import type { FixtureModel } from './fixtures.js'

const run = promisify(execFile)

/** Where the action would point KServe for a registered version: MLflow's own location, mapped. */
export async function storageUriOfVersion(version: string): Promise<string> {
  const res = await fetch(
    `${rigEnv('MLFLOW_URI')}/api/2.0/mlflow/model-versions/get-download-uri?name=${encodeURIComponent(rigEnv('FIXTURE_MODEL'))}&version=${version}`,
  )
  const { artifact_uri } = (await res.json()) as { artifact_uri: string }
  return storageUriFor(artifact_uri, rigEnv('KSERVE_ARTIFACTS_DESTINATION'))
}

/** Puts a model directory into the rig's bucket under `prefix`; returns its s3:// URI. */
export async function putModel(dir: string, prefix: string): Promise<string> {
  const endpoint = rigEnv('KSERVE_S3_ENDPOINT')
  const bucket = rigEnv('KSERVE_ARTIFACTS_DESTINATION').replace(/^s3:\/\//, '')
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]))
  for (const file of walk(dir)) {
    const key = `${prefix}/${relative(dir, file)}`
    const res = await fetch(`${endpoint}/${bucket}/${key}`, { method: 'PUT', body: readFileSync(file) })
    if (!res.ok) throw new Error(`PUT ${key}: HTTP ${res.status} ${await res.text()}`)
  }
  return `s3://${bucket}/${prefix}`
}

/** MLflow pyfunc's predictions for the model's own input example, from the rig's MLflow venv. */
export async function pyfuncPredictions(modelDir: string): Promise<unknown[]> {
  const python = `${process.env.RIG_CACHE ?? '/var/cache/mlflow-k8s-deploy-rig'}/venvs/mlflow/bin/python`
  const script = [
    'import json, sys, pandas as pd, mlflow.pyfunc',
    'd = sys.argv[1]',
    'ex = json.load(open(d + "/input_example.json"))',
    'df = pd.DataFrame(ex["data"], columns=ex["columns"])',
    'print(json.dumps(pd.Series(mlflow.pyfunc.load_model(d).predict(df)).tolist()))',
  ].join('\n')
  const { stdout } = await run(python, ['-c', script, modelDir], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout.trim().split('\n').pop()!) as unknown[]
}

/** The predictor pods of an InferenceService as the API lists them. */
export async function predictorPods(kube: Kube, namespace: string, name: string): Promise<KubeObject[]> {
  return kube.readAll(POD, namespace, `serving.kserve.io/inferenceservice=${name}`)
}

/** The predictor Service's ClusterIP URL. */
export async function serviceUrl(kube: Kube, namespace: string, name: string): Promise<string> {
  const svc = await kube.read(SERVICE, namespace, predictorName(name))
  const spec = svc?.spec as { clusterIP?: string; ports?: { port: number }[] } | undefined
  if (!spec?.clusterIP || !spec.ports?.[0]) throw new Error(`no Service ${predictorName(name)}`)
  return `http://${spec.clusterIP}:${spec.ports[0].port}`
}

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/k8s/kserve')
const recording = process.env.RECORD_KSERVE_FIXTURES === '1'

/** Without managedFields and other noise, so fixtures stay readable. */
function trim(o: KubeObject): KubeObject {
  const copy = structuredClone(o)
  if (copy.metadata) {
    delete copy.metadata['managedFields']
    const a = copy.metadata.annotations
    if (a) delete a['kubectl.kubernetes.io/last-applied-configuration']
  }
  return copy
}

/**
 * Records the snapshot as fixture `name` (only with RECORD_KSERVE_FIXTURES=1). `previous`: the
 * predictor Deployment's generation before the apply that led here.
 */
export async function record(
  kube: Kube,
  namespace: string,
  name: string,
  fixture: string,
  note: string,
  previousDeploymentGeneration?: number,
  accept: (s: PredictorSnapshot) => boolean = () => true,
  timeoutMs = 120_000,
): Promise<void> {
  if (!recording) return
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const s = await readPredictor(kube, namespace, name)
    if (s && accept(s)) {
      mkdirSync(FIXTURES, { recursive: true })
      const out = {
        note,
        ...(previousDeploymentGeneration !== undefined ? { previousDeploymentGeneration } : {}),
        isvc: trim(s.isvc),
        deployment: s.deployment && trim(s.deployment),
        replicaSets: s.replicaSets.map(trim),
        pods: s.pods.map(trim),
      }
      writeFileSync(join(FIXTURES, `${fixture}.json`), `${JSON.stringify(out, null, 2)}\n`)
      return
    }
    if (Date.now() > deadline) throw new Error(`fixture ${fixture}: the state to record did not show up`)
    await new Promise((r) => setTimeout(r, 300))
  }
}

/** The deployed model's answer to its own input example, over V2 at `url` (through the ingress for a rig host). */
export async function v2Predictions(url: string, name: string, model: FixtureModel): Promise<unknown[]> {
  const { request } = buildV2Request({ signature: model.signature, example: model.example })
  const res = await call(`${url}/v2/models/${name}/infer`, { method: 'POST', body: request })
  if (res.status !== 200) throw new Error(`infer answered ${res.status}: ${res.text}`)
  return (JSON.parse(res.text) as { outputs: { data: unknown[] }[] }).outputs[0]!.data
}
