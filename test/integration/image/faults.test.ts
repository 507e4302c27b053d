// Faults provoked for real on the rig, each with the message a user gets.
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Buildx } from '../../../src/image/buildx.js'
import { createBuildContext, writeBuildFiles } from '../../../src/image/context.js'
import { actionsExec, type Exec } from '../../../src/image/exec.js'
import { planImage, type ModelFacts } from '../../../src/image/index.js'
import { MemoryLogger } from '../../../src/util/logger.js'
import { rigEnv } from '../rig-env.js'
import { freePort, imageDeps, imageInputs, SLOW } from './helpers.js'

const RUN = Date.now().toString(36)
// Plans fail before any model file matters: a fixed set of facts is enough here.
const FACTS: ModelFacts = {
  name: 'wine-classifier',
  version: '1',
  runId: 'r1',
  artifacts: [{ path: 'MLmodel', size: 10 }],
  mlmodelSha256: 'f'.repeat(64),
  requirements: '',
}
const plan = (over: Parameters<typeof imageInputs>[0], deps = imageDeps()) =>
  planImage(deps, { image: imageInputs(over), model: FACTS, generatorVersion: '0.1.0-it' })

async function context(requirements: string) {
  const ctx = await createBuildContext()
  await writeFile(join(ctx.modelDir, 'MLmodel'), 'flavors: {}\n')
  await writeBuildFiles(ctx, requirements, 'mlserver')
  return ctx
}

function buildx(env: Record<string, string> = {}, exec: Exec = actionsExec) {
  return new Buildx({
    exec,
    log: new MemoryLogger(),
    env: { DOCKER_HOST: rigEnv('DOCKER_HOST'), ...env },
    docker: rigEnv('DOCKER_CLI'),
  })
}

async function build(b: Buildx, requirements: string, over: { base?: string; tag?: string } = {}) {
  const ctx = await context(requirements)
  const base = over.base ?? `${rigEnv('BASE_IMAGE').replace(/:[^/]*$/, '')}@${rigEnv('BASE_IMAGE_DIGEST')}`
  return b.build({
    context: ctx.dir,
    dockerfile: ctx.dockerfile,
    tags: [over.tag ?? `${rigEnv('REGISTRY')}/it-faults-${RUN}:x`],
    platforms: [],
    buildArgs: { BASE_IMAGE: base },
    labels: {},
    cacheFrom: [],
    cacheTo: [],
    network: 'host',
    baseImage: base,
  })
}

describe('plan faults', () => {
  test('an invalid image repository', async () => {
    await expect(plan({ repository: `${rigEnv('REGISTRY')}/Wine Model` })).rejects.toThrow(
      /is not a valid image reference: it contains whitespace/,
    )
    await expect(plan({ repository: `${rigEnv('REGISTRY')}/Wine` })).rejects.toThrow(
      /repository component "Wine" must be lower-case/,
    )
  })

  test('a registry that is not reachable (a closed port)', async () => {
    const port = await freePort()
    await expect(plan({ repository: `127.0.0.1:${port}/wine` })).rejects.toThrow(
      new RegExp(`cannot reach registry 127.0.0.1:${port} \\(http://127.0.0.1:${port}\\): ECONNREFUSED`),
    )
  })

  test('a server that answers HTML instead of the registry API (the MLflow UI)', async () => {
    const host = new URL(rigEnv('MLFLOW_URI')).host
    await expect(plan({ repository: `${host}/wine` })).rejects.toThrow(
      new RegExp(`${host} answered .* with an HTML page \\(HTTP 404\\), not the registry API`),
    )
  })

  test('a base image that does not exist', async () => {
    await expect(plan({ baseImage: `${rigEnv('REGISTRY')}/no-such-base:1` })).rejects.toThrow(
      /the base image 127.0.0.1:\d+\/no-such-base:1 was not found in its registry/,
    )
  })
})

describe('build faults', () => {
  test(
    'buildx missing (the CLI plugin directory hidden in a mount namespace)',
    async () => {
      const empty = await mkdtemp(join(tmpdir(), 'no-plugins-'))
      // The real docker CLI, with /usr/libexec/docker/cli-plugins (where buildx lives) empty.
      const hidden: Exec = (cmd, args, opts) =>
        actionsExec(
          'unshare',
          ['-m', 'sh', '-c', `mount --bind ${empty} /usr/libexec/docker/cli-plugins && exec "$0" "$@"`, cmd, ...args],
          opts,
        )
      await expect(buildx({}, hidden).version()).rejects.toThrow(
        /docker buildx is not installed: add docker\/setup-buildx-action before this step, or install the docker-buildx package/,
      )
      await expect(build(buildx({}, hidden), '')).rejects.toThrow(/docker buildx is not installed/)
    },
    SLOW,
  )

  test(
    'the Docker daemon not running (DOCKER_HOST on a socket nobody serves)',
    async () => {
      await expect(build(buildx({ DOCKER_HOST: 'unix:///tmp/no-dockerd.sock' }), '')).rejects.toThrow(
        /the Docker daemon is not running or not reachable at DOCKER_HOST=unix:\/\/\/tmp\/no-dockerd.sock: ERROR: Cannot connect to the Docker daemon/,
      )
    },
    SLOW,
  )

  test(
    'a base image that does not exist',
    async () => {
      await expect(build(buildx(), '', { base: `${rigEnv('REGISTRY')}/no-such-base:1` })).rejects.toThrow(
        /the base image 127.0.0.1:\d+\/no-such-base:1 could not be pulled: .*not found/,
      )
    },
    SLOW,
  )

  test(
    'requirements that fail to install: the end of pip’s error',
    async () => {
      const err = (await build(buildx(), 'no-such-package-mlflow-k8s-deploy==9.9.9\n').catch((e: Error) => e)) as Error
      expect(err.message).toMatch(/^the model's requirements failed to install/)
      expect(err.message).toContain(
        'ERROR: No matching distribution found for no-such-package-mlflow-k8s-deploy==9.9.9',
      )
    },
    SLOW,
  )

  test(
    'push denied: the authenticated registry without credentials',
    async () => {
      const cfg = await mkdtemp(join(tmpdir(), 'no-creds-'))
      await mkdir(join(cfg, 'cli-plugins'), { recursive: true })
      await chmod(cfg, 0o700)
      const tag = `${rigEnv('REGISTRY_AUTH')}/it-faults-${RUN}:x`
      await expect(build(buildx({ DOCKER_CONFIG: cfg }), '', { tag })).rejects.toThrow(
        new RegExp(
          `pushing ${tag} was refused: log in to the registry with push rights first.*no basic auth credentials`,
        ),
      )
    },
    SLOW,
  )
})
