// Benchmark of the image stage on the rig (issue 5), against `mlflow models build-docker` +
// `docker push` of the same model on the same machine and base.
//   node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/image.ts [hit-trials]
// Needs the rig's docker, registry, mlserver, mlflow and fixtures parts.
import { mlflowInputs } from '../test/support/fixtures.js'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { actionsExec } from '../src/image/exec.js'
import { buildServingImage, createImageDeps, modelFacts, planServingImage } from '../src/image/index.js'
import { createMlflow, type Mlflow } from '../src/mlflow/index.js'
import { parseModelUri, type ModelRef } from '../src/mlflow/model-uri.js'
import { UndiciTransport } from '../src/util/http.js'
import { MemoryLogger } from '../test/support/memory-logger.js'
import { imageInputs } from '../test/integration/image/helpers.js'
import { rigEnv } from '../test/integration/rig-env.js'

const hitTrials = Number(process.argv[2] ?? 10)
const RUN = Date.now().toString(36)
const MODEL = rigEnv('FIXTURE_MODEL')
const REGISTRY = rigEnv('REGISTRY')
const DOCKER = rigEnv('DOCKER_CLI')
const env = { ...process.env, DOCKER_HOST: rigEnv('DOCKER_HOST') }
const image = imageInputs({ repository: `${REGISTRY}/bench-wine-${RUN}` })

function mlflow(): { client: Mlflow; http: UndiciTransport } {
  const http = new UndiciTransport()
  const client = createMlflow(mlflowInputs({ trackingUri: rigEnv('MLFLOW_URI') }), {
    getIdToken: async () => '',
    mask: () => {},
    env: {},
    log: new MemoryLogger(),
    http,
  })
  return { client, http }
}

function deps() {
  const e = { PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_HOST: rigEnv('DOCKER_HOST') }
  return createImageDeps({ log: new MemoryLogger(), env: e, mask: () => {}, exec: actionsExec })
}

/** What the pipeline does up to "the manifest could be applied": resolve, inspect, plan. */
async function plan(version: string) {
  const { client, http } = mlflow()
  const ref = parseModelUri(`models:/${MODEL}/${version}`) as ModelRef
  const details = await client.inspect(await client.resolve(ref))
  const p = await planServingImage(deps(), { image, model: modelFacts(details), generatorVersion: 'bench' })
  return { p, details, client, http }
}

/** Plan + download + build + push: from nothing to a pushed digest. */
async function ours(version: string, noCache: boolean) {
  const t0 = performance.now()
  const { p, details, client, http } = await plan(version)
  if (p.decision !== 'build') throw new Error(`expected a build for v${version}, got ${p.reason}`)
  const work = mkdtempSync(join(tmpdir(), 'bench-model-'))
  const downloaded = await client.download(details, { workDir: work })
  const built = await buildServingImage(deps(), { image, plan: p, modelDir: downloaded.dir, network: 'host', noCache })
  const seconds = (performance.now() - t0) / 1000
  rmSync(work, { recursive: true, force: true })
  await http.close()
  return { seconds, ref: p.ref, digest: built.digest, buildSeconds: built.seconds }
}

function docker(args: string[], opts: { cwd?: string } = {}) {
  return execFileSync(DOCKER, args, { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 })
    .toString()
    .trim()
}

/**
 * `mlflow models build-docker` as MLflow 3.17.2 has it. Two facts shape this:
 * - `--enable-mlserver` is gone from MLflow 3.17.2 (no such option; no `enable_mlserver` left in
 *   the package), so this builds MLflow's own scoring-server image: same layer order (the model
 *   is copied, then its dependencies installed), a different server.
 * - build-docker runs `docker build` with no --network option, and the rig's dockerd has no
 *   bridge network ("network bridge not found"). So: generate the very same context with
 *   `mlflow models generate-dockerfile`, run the command build-docker runs
 *   (`docker build --platform linux/amd64`) plus `--network host`, then `docker push`.
 */
function buildDocker(version: string, tag: string, noCache: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-build-docker-'))
  const t0 = performance.now()
  execFileSync(
    rigEnv('MLFLOW_PYTHON'),
    [
      '-m',
      'mlflow',
      'models',
      'generate-dockerfile',
      '-m',
      `models:/${MODEL}/${version}`,
      '-d',
      dir,
      '--env-manager',
      'local',
    ],
    { env: { ...env, MLFLOW_TRACKING_URI: rigEnv('MLFLOW_URI') }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const t1 = performance.now()
  docker(
    [
      'build',
      '--platform',
      'linux/amd64',
      '--network',
      'host',
      ...(noCache ? ['--no-cache'] : []),
      '-t',
      tag,
      '-f',
      'Dockerfile',
      '.',
    ],
    { cwd: dir },
  )
  docker(['push', tag])
  const seconds = (performance.now() - t0) / 1000
  rmSync(dir, { recursive: true, force: true })
  return { seconds, generateSeconds: (t1 - t0) / 1000 }
}

/**
 * build-docker's FROM is python:<model python>-slim from Docker Hub, unreachable here. Stand-in:
 * the rig's base image (the same base our images use: Debian bookworm, Python 3.11, MLServer)
 * as root, since build-docker's Dockerfile runs apt-get and expects to be root.
 */
function tagSlimStandIn(): string {
  const ctx = mkdtempSync(join(tmpdir(), 'bench-slim-'))
  const py = execFileSync(rigEnv('MLFLOW_PYTHON'), ['-c', 'import platform; print(platform.python_version())'])
    .toString()
    .trim()
  const slim = `python:${py}-slim`
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${rigEnv('BASE_IMAGE')}\nUSER root\n`)
  docker(['build', '--network', 'host', '-q', '-t', slim, ctx])
  rmSync(ctx, { recursive: true, force: true })
  return slim
}

const size = (ref: string) => Number(docker(['image', 'inspect', '-f', '{{.Size}}', ref])) / 1e6
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))]!

console.log(`model ${MODEL} v1, v2; repository ${image.repository}; base ${image.baseImage}`)

// 1. Cold build of version 1 (no layer cache), then the warm rebuild for version 2.
const cold = await ours('1', true)
console.log(`ours: cold build+push v1 ${cold.seconds.toFixed(1)} s (buildx ${cold.buildSeconds.toFixed(1)} s)`)
const rebuild = await ours('2', false)
console.log(`ours: rebuild v2 ${rebuild.seconds.toFixed(1)} s (buildx ${rebuild.buildSeconds.toFixed(1)} s)`)

// 2. The cache-hit path, fresh clients each trial (as one action run has).
const hits: number[] = []
for (let i = 0; i < hitTrials; i++) {
  const t0 = performance.now()
  const { p, http } = await plan('1')
  hits.push(performance.now() - t0)
  await http.close()
  if (p.decision !== 'hit') throw new Error(`expected a hit, got ${p.reason}`)
}
console.log(
  `ours: cache-hit plan median ${median(hits).toFixed(0)} ms, p90 ${p90(hits).toFixed(0)} ms, first ${hits[0]!.toFixed(0)} ms`,
)

// 3. build-docker on the same base, cold then version 2.
const slim = tagSlimStandIn()
const theirsRepo = `${REGISTRY}/bench-build-docker-${RUN}`
const bdCold = buildDocker('1', `${theirsRepo}:v1`, true)
console.log(
  `build-docker: cold v1 ${bdCold.seconds.toFixed(1)} s (generate-dockerfile ${bdCold.generateSeconds.toFixed(1)} s), base ${slim}`,
)
const bdRebuild = buildDocker('2', `${theirsRepo}:v2`, false)
console.log(
  `build-docker: rebuild v2 ${bdRebuild.seconds.toFixed(1)} s (generate-dockerfile ${bdRebuild.generateSeconds.toFixed(1)} s)`,
)

// 4. Sizes (uncompressed, as `docker images` shows them).
const sizes = { base: size(image.baseImage), ours: size(rebuild.ref), theirs: size(`${theirsRepo}:v2`) }
console.log(
  `sizes: base ${sizes.base.toFixed(0)} MB, ours ${sizes.ours.toFixed(0)} MB, build-docker ${sizes.theirs.toFixed(0)} MB`,
)

console.log(`
| | mlflow-k8s-deploy | build-docker + push (MLflow 3.17.2) |
|---|---|---|
| cold build + push, v1 | ${cold.seconds.toFixed(1)} s | ${bdCold.seconds.toFixed(1)} s |
| rebuild for v2 (same requirements) | ${rebuild.seconds.toFixed(1)} s | ${bdRebuild.seconds.toFixed(1)} s |
| rebuild speed-up | ${(bdRebuild.seconds / rebuild.seconds).toFixed(1)}x | |
| cache hit (plan, no download, no build) | median ${median(hits).toFixed(0)} ms, p90 ${p90(hits).toFixed(0)} ms | n/a (always builds) |
| image size | ${sizes.ours.toFixed(0)} MB | ${sizes.theirs.toFixed(0)} MB |
`)
