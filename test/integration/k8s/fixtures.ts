// Real models for the cluster tests: the rig's wine-classifier versions downloaded from the plain
// MLflow server through its proxied-artifacts API, and serving images built from them on the
// rig's MLServer base and pushed to the rig registry. Cached per process (and images by tag).
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { load } from 'js-yaml'
import type { InputExampleLike } from '../../../src/inference/request.js'
import type { Deployment, RolloutWaitOptions, ServingApplyOptions, ServingCluster } from '../../../src/k8s/index.js'
import type { KubeObject } from '../../../src/k8s/readiness.js'
import { renderServingManifest, type Shape } from '../../../src/k8s/render.js'
import { parseSignature, type Signature } from '../../../src/mlflow/mlmodel.js'
import { rigEnv } from '../rig-env.js'

const run = promisify(execFile)

export interface FixtureModel {
  readonly version: string
  readonly dir: string
  readonly signature: Signature
  readonly example: InputExampleLike
}

const models = new Map<string, Promise<FixtureModel>>()

export function fixtureModel(version: string): Promise<FixtureModel> {
  let m = models.get(version)
  if (!m) models.set(version, (m = download(version)))
  return m
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) })
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`)
  return (await res.json()) as Record<string, unknown>
}

async function download(version: string): Promise<FixtureModel> {
  const mlflow = rigEnv('MLFLOW_URI')
  const name = rigEnv('FIXTURE_MODEL')
  const { artifact_uri } = (await getJson(
    `${mlflow}/api/2.0/mlflow/model-versions/get-download-uri?name=${encodeURIComponent(name)}&version=${version}`,
  )) as { artifact_uri: string }
  const root = artifact_uri.replace(/^mlflow-artifacts:\/+/, '')
  const dir = mkdtempSync(join(tmpdir(), `wine-v${version}-`))
  const walk = async (path: string): Promise<void> => {
    const { files = [] } = (await getJson(
      `${mlflow}/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(path)}`,
    )) as { files?: { path: string; is_dir: boolean }[] }
    for (const f of files) {
      const full = `${path}/${f.path.split('/').pop()}`
      if (f.is_dir) {
        await walk(full)
        continue
      }
      const res = await fetch(`${mlflow}/api/2.0/mlflow-artifacts/artifacts/${full}`)
      if (!res.ok) throw new Error(`download ${full}: HTTP ${res.status}`)
      const target = join(dir, full.slice(root.length + 1))
      mkdirSync(dirname(target), { recursive: true })
      writeFileSync(target, Buffer.from(await res.arrayBuffer()))
    }
  }
  await walk(root)
  return { version, dir, ...readModelIo(dir) }
}

/** Signature and input example from an MLmodel directory (the bits the smoke test needs). */
export function readModelIo(dir: string): { signature: Signature; example: InputExampleLike } {
  const mlmodel = load(readFileSync(join(dir, 'MLmodel'), 'utf8')) as {
    signature: { inputs: string; outputs: string }
    saved_input_example_info: { artifact_path: string; type: string; pandas_orient?: string }
  }
  const info = mlmodel.saved_input_example_info
  return {
    signature: parseSignature(mlmodel.signature),
    example: {
      type: info.type,
      pandasOrient: info.pandas_orient,
      content: JSON.parse(readFileSync(join(dir, info.artifact_path), 'utf8')),
    },
  }
}

/** A copy of a model whose signature promises outputs the model does not produce. */
export function withLyingSignature(model: FixtureModel): FixtureModel {
  const dir = mkdtempSync(join(tmpdir(), 'wine-lying-'))
  for (const f of ['MLmodel', 'model.pkl', 'input_example.json', 'requirements.txt', 'conda.yaml', 'python_env.yaml']) {
    writeFileSync(join(dir, f), readFileSync(join(model.dir, f)))
  }
  const text = readFileSync(join(dir, 'MLmodel'), 'utf8').replace(
    /outputs: '.*'/,
    `outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]'`,
  )
  writeFileSync(join(dir, 'MLmodel'), text)
  return { ...model, dir, ...readModelIo(dir) }
}

const images = new Map<string, Promise<string>>()

/** The model in a serving image on the rig's MLServer base, pushed to the rig registry. */
export function modelImage(version: string): Promise<string> {
  let i = images.get(version)
  if (!i) images.set(version, (i = buildServingImage(version)))
  return i
}

async function buildServingImage(version: string): Promise<string> {
  const model = await fixtureModel(version)
  const ref = `${rigEnv('REGISTRY')}/it-k8s-wine:v${version}`
  const ctx = mkdtempSync(join(tmpdir(), 'wine-image-'))
  await run('cp', ['-r', model.dir, join(ctx, 'model')])
  const sklearn = /scikit-learn==([\d.]+)/.exec(readFileSync(join(model.dir, 'requirements.txt'), 'utf8'))?.[1]
  writeFileSync(
    join(ctx, 'Dockerfile'),
    [
      `FROM ${rigEnv('BASE_IMAGE')}`,
      `RUN pip install scikit-learn==${sklearn}`,
      'COPY model /mnt/models/model',
      'ENV MLSERVER_MODEL_IMPLEMENTATION=mlserver_mlflow.MLflowRuntime MLSERVER_MODEL_URI=/mnt/models/model',
      '',
    ].join('\n'),
  )
  const env = { ...process.env, DOCKER_HOST: rigEnv('DOCKER_HOST') }
  const docker = rigEnv('DOCKER_CLI')
  // The rig's daemon has no bridge network: builds use the host's.
  await run(docker, ['build', '--network', 'host', '-q', '-t', ref, ctx], { env, maxBuffer: 1 << 24 })
  await run(docker, ['push', ref], { env, maxBuffer: 1 << 24 })
  const { stdout } = await run(docker, ['inspect', '--format', '{{index .RepoDigests 0}}', ref], { env })
  return stdout.trim()
}

/** What the cluster suites deploy: the wine model's version as the action would render it. */
export function wineManifest(
  shape: Shape,
  name: string,
  values: { image?: string; storageUri?: string; version?: string },
  options: { namespace: string; annotations?: Record<string, string>; maxScale?: number },
): KubeObject {
  const version = values.version ?? '1'
  return renderServingManifest(
    {
      name,
      namespace: options.namespace,
      modelUri: `models:/wine-classifier/${version}`,
      modelName: 'wine-classifier',
      modelVersion: version,
      image: values.image,
      digest: values.image?.split('@')[1],
      storageUri: values.storageUri,
    },
    {
      shape,
      env: [{ name: 'MLSERVER_PARALLEL_WORKERS', value: '0' }],
      labels: { team: 'it' },
      annotations: options.annotations ?? {},
      resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: undefined },
      minScale: 1,
      maxScale: options.maxScale ?? 1,
    },
  )
}

/** Apply, then wait for the rollout, as the pipeline's apply and wait stages do one after the other. */
export async function applyAndWait(
  cluster: ServingCluster,
  manifest: KubeObject,
  options: ServingApplyOptions & RolloutWaitOptions,
): Promise<Deployment> {
  return cluster.waitReady(await cluster.apply(manifest, options), options)
}
