// The image stage for real: plan against the rig's registries, build the wine model with buildx,
// push, run the image and compare its V2 predictions with MLflow's own pyfunc. Then the cache:
// same version → hit without a download; new version → new tag with the requirements layer
// reused; moved base → new tag; a tag holding another image → rebuilt.
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildServingImage, planServingImage, type ImagePlan } from '../../../src/image/index.js'
import { RegistryClient } from '../../../src/image/registry.js'
import { UndiciTransport } from '../../../src/util/http.js'
import { DockerConfigCredentials } from '../../../src/image/docker-config.js'
import { actionsExec } from '../../../src/image/exec.js'
import { parseImageRef } from '../../../src/image/reference.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'
import {
  columnsRequest,
  docker,
  infer,
  runServing,
  imageDeps,
  imageInputs,
  inspectModel,
  mlflowClient,
  modelFacts,
  pyfuncPredict,
  RecordingTransport,
  SLOW,
} from './helpers.js'

const RUN = Date.now().toString(36)
const MODEL = () => rigEnv('FIXTURE_MODEL')
const REPO = () => `${rigEnv('REGISTRY')}/it-wine-${RUN}`
const http = new RecordingTransport()
const mlflow = () => mlflowClient(http)
const containers: string[] = []

afterAll(async () => {
  for (const c of containers) await docker(['rm', '-f', c]).catch(() => undefined)
  await http.close()
})

async function plan(version: string, over: Parameters<typeof imageInputs>[0] = {}, deps = imageDeps()) {
  const details = await inspectModel(mlflow(), `models:/${MODEL()}/${version}`)
  const image = imageInputs({ repository: REPO(), ...over })
  const p = await planServingImage(deps, { image, model: modelFacts(details), generatorVersion: '0.1.0-it' })
  return { plan: p, details, image, deps }
}

async function build(version: string, p: ImagePlan, over: Parameters<typeof imageInputs>[0] = {}, deps = imageDeps()) {
  const details = await inspectModel(mlflow(), `models:/${MODEL()}/${version}`)
  const workDir = await mkdtemp(join(tmpdir(), 'it-model-'))
  const downloaded = await mlflow().download(details, { workDir })
  const image = imageInputs({ repository: REPO(), ...over })
  return buildServingImage(deps, { image, plan: p, modelDir: downloaded.dir, network: 'host' })
}

const built: Record<string, { plan: ImagePlan; digest: string; image: string; seconds: number; log: string[] }> = {}

describe('plan and build the wine model', () => {
  test(
    'version 1: a miss, then build and push; the registry holds the digest and the identity labels',
    async () => {
      const { plan: p } = await plan('1')
      expect(p.decision).toBe('build')
      expect(p.tag).toMatch(/^v1-[a-f0-9]{20}$/)
      expect(p.reason).toMatch(/does not exist yet/)
      const deps = imageDeps()
      const out = await build('1', p, {}, deps)
      expect(out.digest).toMatch(/^sha256:[a-f0-9]{64}$/)
      expect(out.image).toBe(`${REPO()}@${out.digest}`)
      built.v1 = { plan: p, ...out, log: deps.log.lines }

      const registry = new RegistryClient({
        http: new UndiciTransport(),
        credentials: new DockerConfigCredentials({ env: {}, exec: actionsExec, mask: () => {} }),
        log: new MemoryLogger(),
      })
      const remote = await registry.inspect(parseImageRef(p.ref))
      expect(remote?.digest).toBe(out.digest)
      expect(remote?.labels).toMatchObject(p.labels)
      expect(remote?.labels['mlflow-k8s-deploy.identity']).toBe(p.identity.digest)
    },
    SLOW,
  )

  test(
    'the built image serves /v2/models/<name>/infer and predicts what MLflow pyfunc predicts',
    async () => {
      const { details } = await plan('1')
      const example = details.inputExample
      const split =
        (example as unknown as { split?: { columns: string[]; data: number[][] } })?.split ?? (await loadSplit(details))
      const name = `it-wine-${RUN}`
      containers.push(name)
      const serving = await runServing(built.v1!.image, 'mlserver', name, 'wine')
      expect(await docker(['inspect', '-f', '{{.Config.User}}', name])).toBe('1000')
      const ready = await fetch(`${serving.url}/v2/health/ready`)
      expect(ready.status).toBe(200)

      const res = await infer(serving, 'wine', columnsRequest(split))
      const body = res.body as { model_name: string; outputs: { data: unknown[] }[] }
      expect(res.status).toBe(200)
      expect(body.model_name).toBe('wine')
      const expected = await pyfuncPredict(`models:/${MODEL()}/1`, split)
      expect(body.outputs[0]!.data).toEqual(expected)
      expect(expected).toHaveLength(split.data.length)
    },
    SLOW,
  )

  test(
    'the same version again: a cache hit with the same digest, and no artifact downloaded',
    async () => {
      const before = http.urls.length
      const started = performance.now()
      const { plan: p } = await plan('1')
      const ms = performance.now() - started
      expect(p.decision).toBe('hit')
      expect(p.digest).toBe(built.v1!.digest)
      expect(p.image).toBe(built.v1!.image)
      expect(p.reason).toMatch(/^image cache hit: .* build skipped$/)
      const fetched = http.urls.slice(before)
      // Only the registry API and small descriptive files: never the pickled model.
      expect(fetched.some((u) => /model\.pkl/.test(u))).toBe(false)
      expect(fetched.length).toBeGreaterThan(0)
      console.log(
        `cache-hit plan (resolve + inspect + registry) took ${ms.toFixed(0)} ms, ${fetched.length} MLflow requests`,
      )
    },
    SLOW,
  )

  test(
    'version 2: a new tag; the rebuild reuses the requirements layer and pushes a new digest',
    async () => {
      const { plan: p } = await plan('2')
      expect(p.decision).toBe('build')
      expect(p.tag).toMatch(/^v2-/)
      expect(p.tag).not.toBe(built.v1!.plan.tag)
      const deps = imageDeps()
      const out = await build('2', p, {}, deps)
      expect(out.digest).not.toBe(built.v1!.digest)
      // BuildKit reports the install step as CACHED: same requirements, same layer.
      const lines = deps.log.lines.map((l) => l.replace(/^debug: /, ''))
      const step = lines.map((l) => /^#(\d+) \[.*install\.sh -r/.exec(l)?.[1]).find(Boolean)
      expect(step).toBeDefined()
      expect(lines).toContain(`#${step} CACHED`)
      console.log(
        `rebuild for version 2 took ${out.seconds.toFixed(1)} s (version 1: ${built.v1!.seconds.toFixed(1)} s)`,
      )
    },
    SLOW,
  )
})

async function loadSplit(
  details: Awaited<ReturnType<typeof inspectModel>>,
): Promise<{ columns: string[]; data: number[][] }> {
  const raw = details.smallFiles['input_example.json']
  if (!raw) throw new Error('the fixture model has no input_example.json')
  return JSON.parse(raw.toString('utf8')) as { columns: string[]; data: number[][] }
}

describe('cache rule against the registry', () => {
  test(
    'a base image whose tag moved to a new digest gives a new tag',
    async () => {
      const base = `${rigEnv('REGISTRY')}/it-base-${RUN}:1.7.1-py3.11`
      const dir = await mkdtemp(join(tmpdir(), 'it-base-'))
      const push = async (mark: string) => {
        await writeFile(join(dir, 'Dockerfile'), `FROM ${rigEnv('BASE_IMAGE')}\nLABEL it.mark=${mark}\n`)
        await docker(['buildx', 'build', '--quiet', '--push', '-t', base, dir])
      }
      await push('a')
      const a = await plan('1', { baseImage: base })
      await push('b')
      const b = await plan('1', { baseImage: base })
      expect(a.plan.base.digest).not.toBe(b.plan.base.digest)
      expect(a.plan.tag).not.toBe(b.plan.tag)
      expect(b.plan.base.pinned).toBe(`${rigEnv('REGISTRY')}/it-base-${RUN}@${b.plan.base.digest}`)
    },
    SLOW,
  )

  test(
    'a user tag holding another image is rebuilt with a warning, then hits',
    async () => {
      // Someone pushed an unrelated image under the tag.
      await docker(['tag', rigEnv('BASE_IMAGE'), `${REPO()}:stable`])
      await docker(['push', `${REPO()}:stable`])
      const first = await plan('1', { tag: 'stable' })
      expect(first.plan.decision).toBe('build')
      expect(first.deps.log.lines.join('\n')).toMatch(
        /warning: image-tag "stable" already points at an image without our identity label.*Mutable tags are risky/,
      )
      const out = await build('1', first.plan, { tag: 'stable' })
      const again = await plan('1', { tag: 'stable' })
      expect(again.plan.decision).toBe('hit')
      expect(again.plan.digest).toBe(out.digest)
      // The same tag for another version: labels differ → rebuild.
      const v2 = await plan('2', { tag: 'stable' })
      expect(v2.plan.decision).toBe('build')
      expect(v2.plan.reason).toMatch(/holds the image of another model/)
    },
    SLOW,
  )

  test(
    'build: never with a miss is a clear error; build: always rebuilds a hit',
    async () => {
      await expect(plan('1', { build: 'never', tag: 'never-built' })).rejects.toThrow(
        /build: never, but the image must be built: .*does not exist yet/,
      )
      const always = await plan('1', { build: 'always' })
      expect(always.plan.decision).toBe('build')
      expect(always.plan.reason).toMatch(/build: always/)
    },
    SLOW,
  )
})

describe('the authenticated registry (htpasswd, Basic challenge)', () => {
  const AUTH_REPO = () => `${rigEnv('REGISTRY_AUTH')}/it-wine-${RUN}`

  test(
    'with the docker config from a login: miss, build and push, then a hit read through auth',
    async () => {
      const cfg = rigEnv('DOCKER_CONFIG_AUTH')
      const deps = imageDeps({ dockerConfig: cfg })
      const first = await plan('1', { repository: AUTH_REPO() }, deps)
      expect(first.plan.decision).toBe('build')
      expect(deps.masked).toContain(rigEnv('REGISTRY_AUTH_PASSWORD'))
      const out = await build(
        '1',
        first.plan,
        { repository: AUTH_REPO() },
        imageDeps({ dockerConfig: cfg, env: { DOCKER_CONFIG: cfg } }),
      )
      const again = await plan('1', { repository: AUTH_REPO() }, imageDeps({ dockerConfig: cfg }))
      expect(again.plan.decision).toBe('hit')
      expect(again.plan.digest).toBe(out.digest)
    },
    SLOW,
  )

  test(
    'without credentials: an error naming the registry and that none were found',
    async () => {
      await expect(plan('1', { repository: AUTH_REPO() })).rejects.toThrow(
        new RegExp(
          `registry ${rigEnv('REGISTRY_AUTH')} requires authentication for it-wine-${RUN}; no credentials for ${rigEnv('REGISTRY_AUTH')} were found`,
        ),
      )
    },
    SLOW,
  )

  test(
    'with a wrong password: names the user and the config entry, never the password',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'it-cfg-'))
      const auth = Buffer.from(`${rigEnv('REGISTRY_AUTH_USER')}:wrong-password`).toString('base64')
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [rigEnv('REGISTRY_AUTH')]: { auth } } }))
      const err = (await plan('1', { repository: AUTH_REPO() }, imageDeps({ dockerConfig: dir })).catch(
        (e: Error) => e,
      )) as Error
      expect(err.message).toMatch(
        new RegExp(
          `registry ${rigEnv('REGISTRY_AUTH')} refused access to it-wine-${RUN} \\(HTTP 401.*\\); tried user "${rigEnv('REGISTRY_AUTH_USER')}" from auths\\["${rigEnv('REGISTRY_AUTH')}"\\]`,
        ),
      )
      expect(err.message).not.toContain('wrong-password')
    },
    SLOW,
  )
})
