// The registry client and the image stage against a real Bearer-token registry (the rig's
// token_registry part: docker-registry 2.8 with `auth: token` and the distribution project's
// token server, which grants user rig-alice only repositories under "rig-alice/"). Each case the
// real servers can provoke: challenge → token → retry, a cached token reused, a wrong password, a
// repository outside the user's scope, a rotated signing key, an identity (refresh) token, the
// push-access check before a build, and builds pushed there with both builders.
import { execFile } from 'node:child_process'
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { DockerConfigCredentials } from '../../../src/image/docker-config.js'
import { actionsExec } from '../../../src/image/exec.js'
import { buildServingImage, planServingImage, type ImagePlan } from '../../../src/image/index.js'
import { parseImageRef } from '../../../src/image/reference.js'
import { RegistryClient, type RegistryHttp } from '../../../src/image/registry.js'
import { UndiciTransport } from '../../../src/util/http.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { deleteRegisteredModel } from '../mlflow/helpers.js'
import { rigEnv } from '../rig-env.js'
import { buildkitDockerConfig } from './buildkit-builder.js'
import {
  docker,
  imageDeps,
  imageInputs,
  inspectModel,
  mlflowClient,
  modelFacts,
  RecordingTransport,
  registerWithOwnRequirements,
  SLOW,
} from './helpers.js'

const run = promisify(execFile)
const RUN = Date.now().toString(36)
const REG = () => rigEnv('REGISTRY_TOKEN')
const USER = () => rigEnv('REGISTRY_TOKEN_USER')
const PASSWORD = () => rigEnv('REGISTRY_TOKEN_PASSWORD')
const REALM = () => rigEnv('REGISTRY_TOKEN_REALM')
/** A small image in the user's own namespace, pushed once by docker. */
const OWN = () => `${REG()}/${USER()}/it-tok-${RUN}:pause`

/** Records each request and its answer's status; token-server requests are those to the realm. */
class CountingHttp implements RegistryHttp {
  readonly seen: string[] = []
  private readonly inner = new UndiciTransport()
  async request(req: Parameters<RegistryHttp['request']>[0]) {
    const res = await this.inner.request(req)
    const auth = req.headers?.authorization?.split(' ')[0] ?? '-'
    this.seen.push(`${req.method} ${req.url} ${auth} → ${res.status}`)
    return res
  }
  tokenRequests(): string[] {
    return this.seen.filter((s) => s.split(' ')[1]!.startsWith(REALM()))
  }
}

async function dockerConfig(entry: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'it-tok-config-'))
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [REG()]: entry } }))
  return dir
}
const basicEntry = (user: string, password: string) => ({
  auth: Buffer.from(`${user}:${password}`).toString('base64'),
})

function client(configDir: string, http: RegistryHttp = new CountingHttp(), now?: () => number) {
  const masked: string[] = []
  const c = new RegistryClient({
    http,
    now,
    credentials: new DockerConfigCredentials({
      env: { DOCKER_CONFIG: configDir },
      exec: actionsExec,
      mask: (s) => masked.push(s),
    }),
    log: new MemoryLogger(),
  })
  return Object.assign(c, { masked })
}
/** A refresh token for the user, as a token server hands one out for offline_token=true. */
async function refreshToken(): Promise<string> {
  const url = new URL(REALM())
  url.searchParams.set('service', rigEnv('REGISTRY_TOKEN_SERVICE'))
  url.searchParams.set('offline_token', 'true')
  url.searchParams.set('client_id', 'docker')
  const res = await fetch(url, {
    headers: { authorization: `Basic ${Buffer.from(`${USER()}:${PASSWORD()}`).toString('base64')}` },
  })
  expect(res.status).toBe(200)
  const refresh = ((await res.json()) as { refresh_token?: string }).refresh_token
  expect(refresh).toBeTruthy()
  return refresh!
}
/** As `docker login` stores a token server's refresh token: "user:" and the identity token. */
const identityConfig = (refresh: string) =>
  dockerConfig({ auth: Buffer.from(`${USER()}:`).toString('base64'), identitytoken: refresh })

const tried = (configDir: string, user = USER()) =>
  `tried user "${user}" from auths["${REG()}"] in ${join(configDir, 'config.json')}`
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** rig.sh up token_registry, on the given signing key pair (restarts both servers on a change). */
async function tokenRegistryOnKey(key: 'primary' | 'rotated') {
  await run('bash', [join(process.cwd(), 'test/rig/rig.sh'), 'up', 'token_registry'], {
    env: { ...process.env, RIG_TOKEN_REGISTRY_KEY: key },
  })
}

let aliceConfig = ''
beforeAll(async () => {
  // A copy: docker and buildx write state next to the config.
  aliceConfig = await mkdtemp(join(tmpdir(), 'it-tok-alice-'))
  await copyFile(join(rigEnv('DOCKER_CONFIG_TOKEN'), 'config.json'), join(aliceConfig, 'config.json'))
  await docker(['pull', '-q', rigEnv('NODE_PAUSE_IMAGE')])
  await docker(['tag', rigEnv('NODE_PAUSE_IMAGE'), OWN()])
  await docker(['push', '-q', OWN()], { DOCKER_CONFIG: aliceConfig })
}, SLOW)

describe('the RegistryClient against the token registry', () => {
  test('challenge → token → retry; the token is then reused for every request of that scope', async () => {
    const http = new CountingHttp()
    const c = client(aliceConfig, http)
    const ref = parseImageRef(OWN())
    const img = await c.inspect(ref)
    expect(img?.digest).toMatch(/^sha256:/)
    expect(await c.headDigest(ref)).toBe(img!.digest)
    expect(await c.inspect(parseImageRef(`${REG()}/${USER()}/it-tok-${RUN}:nope`))).toBeUndefined()
    // Anonymous first: 401 with the Bearer challenge; one token; every later request carries it.
    expect(http.seen[0]).toMatch(new RegExp(`^GET http://${escape(REG())}/v2/.*/manifests/pause - → 401$`))
    expect(http.tokenRequests()).toEqual([
      `GET ${REALM()}?service=${rigEnv('REGISTRY_TOKEN_SERVICE')}&scope=repository%3A${encodeURIComponent(`${USER()}/it-tok-${RUN}`)}%3Apull Basic → 200`,
    ])
    expect(http.seen.slice(2).every((s) => / Bearer → (200|404)$/.test(s))).toBe(true)
    expect(c.masked).toContain(PASSWORD())
  })

  test('a wrong password: one error naming the registry, its token service and the user, never the password', async () => {
    const config = await dockerConfig(basicEntry(USER(), 'wrong-password'))
    const err = (await client(config)
      .inspect(parseImageRef(OWN()))
      .catch((e: Error) => e)) as Error
    expect(err.message).toBe(
      `the token service of registry ${REG()} (${new URL(REALM()).origin}) refused repository:${USER()}/it-tok-${RUN}:pull (HTTP 401); ${tried(config)}`,
    )
    expect(err.message).not.toContain('wrong-password')
  })

  test.each([
    ['another namespace', 'other/wine'],
    ["the other user's namespace", 'rig-bob/wine'],
  ])(
    'a repository outside the user’s scope (%s): one line naming the repository, the missing scope and the fix',
    async (_name, repository) => {
      // The token service grants what it may and leaves the rest out; the registry answers 401
      // insufficient_scope to the fresh token, for a manifest GET and a HEAD alike.
      const expected = `registry ${REG()} refused repository:${repository}:pull (insufficient_scope): the token does not grant pull on ${repository}; ${tried(aliceConfig)}: use a credential with pull access to ${repository}`
      const c = client(aliceConfig)
      await expect(c.inspect(parseImageRef(`${REG()}/${repository}:v1`))).rejects.toThrow(
        new RegExp(`^${escape(expected)}$`),
      )
      await expect(c.headDigest(parseImageRef(`${REG()}/${repository}:v1`))).rejects.toThrow(
        new RegExp(`^${escape(expected)}$`),
      )
    },
  )

  test('an identity token (a refresh token from offline_token=true) is exchanged with the refresh_token grant', async () => {
    const url = new URL(REALM())
    const refresh = await refreshToken()
    const config = await identityConfig(refresh)
    const http = new CountingHttp()
    const c = client(config, http)
    expect((await c.inspect(parseImageRef(OWN())))?.digest).toMatch(/^sha256:/)
    expect(http.tokenRequests()).toEqual([`POST ${REALM()} - → 200`])
    expect(c.masked).toContain(refresh)

    // A refresh token the server does not know: refused, naming the registry and the fix.
    const bad = await dockerConfig({
      auth: Buffer.from(`${USER()}:`).toString('base64'),
      identitytoken: 'not-a-refresh-token',
    })
    await expect(client(bad).inspect(parseImageRef(OWN()))).rejects.toThrow(
      new RegExp(
        `^the token service of registry ${escape(REG())} \\(${escape(url.origin)}\\) refused the identity token for repository:${escape(`${USER()}/it-tok-${RUN}`)}:pull \\(HTTP 401: .*invalid refresh token.*\\); tried an identity token of user "${escape(USER())}" from .*: log in to the registry again`,
      ),
    )
  })
})

describe('checkPushAccess', () => {
  test('the user’s own repository: a pull,push token, an upload started, one try to cancel it', async () => {
    const http = new CountingHttp()
    const ref = parseImageRef(`${REG()}/${USER()}/it-tok-push-${RUN}`)
    expect(await client(aliceConfig, http).checkPushAccess(ref)).toBe(true)
    const [post, del] = http.seen.filter((s) => / Bearer → /.test(s))
    expect(post).toMatch(
      new RegExp(`^POST http://${escape(REG())}/v2/${escape(ref.repository)}/blobs/uploads/ Bearer → 202$`),
    )
    // One try to cancel it with the push token. Distribution asks a `delete` scope for any DELETE,
    // an upload's too: refused, and the empty upload is left for the registry to expire.
    expect(del).toMatch(
      new RegExp(`^DELETE http://${escape(REG())}/v2/${escape(ref.repository)}/blobs/uploads/\\S+ Bearer → 401$`),
    )
    expect(http.tokenRequests()).toHaveLength(1)
    expect(http.tokenRequests()[0]).toContain(`scope=repository%3A${encodeURIComponent(ref.repository)}%3Apull%2Cpush`)
  })

  test('a repository outside the scope: one line naming it and the missing push scope', async () => {
    await expect(client(aliceConfig).checkPushAccess(parseImageRef(`${REG()}/other/wine`))).rejects.toThrow(
      new RegExp(
        `^registry ${escape(REG())} refused repository:other/wine:(pull,push|push,pull) \\(insufficient_scope\\): the token does not grant (pull and push|push and pull) on other/wine; ${escape(tried(aliceConfig))}: use a credential with (pull and push|push and pull) access to other/wine$`,
      ),
    )
  })

  test('the Basic-auth registry: the right password passes, a wrong one is refused naming the user', async () => {
    const basic = parseImageRef(`${rigEnv('REGISTRY_AUTH')}/it-tok-push-${RUN}`)
    expect(await client(rigEnv('DOCKER_CONFIG_AUTH')).checkPushAccess(basic)).toBe(true)
    const dir = await mkdtemp(join(tmpdir(), 'it-tok-config-'))
    const auth = Buffer.from(`${rigEnv('REGISTRY_AUTH_USER')}:wrong-password`).toString('base64')
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [rigEnv('REGISTRY_AUTH')]: { auth } } }))
    await expect(client(dir).checkPushAccess(basic)).rejects.toThrow(
      new RegExp(
        `^registry ${escape(rigEnv('REGISTRY_AUTH'))} refused access to it-tok-push-${RUN} \\(HTTP 401: UNAUTHORIZED: authentication required\\); tried user "${rigEnv('REGISTRY_AUTH_USER')}"`,
      ),
    )
    // The open registry: no credentials needed.
    expect(await client(dir).checkPushAccess(parseImageRef(`${rigEnv('REGISTRY')}/it-tok-push-${RUN}`))).toBe(true)
  })
})

describe('pushing blobs and manifests (an SBOM attached by src/image/sbom.ts)', () => {
  test('a blob uploaded once (POST, PUT), then found by HEAD; a manifest tagged again with its own bytes', async () => {
    const http = new CountingHttp()
    const c = client(aliceConfig, http)
    const ref = parseImageRef(OWN())
    const text = JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', run: RUN })
    const blob = await c.pushBlob(ref, text)
    expect(blob).toEqual({ digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), size: Buffer.byteLength(text) })
    const upload = http.seen.filter((s) => / Bearer → /.test(s)).map((s) => `${s.split(' ')[0]} ${s.split(' → ')[1]}`)
    expect(upload).toEqual(['HEAD 404', 'POST 202', 'PUT 201'])
    expect(await c.blobText(ref, blob.digest)).toBe(text)
    const before = http.seen.length
    expect(await c.pushBlob(ref, text)).toEqual(blob)
    expect(http.seen.slice(before).map((s) => s.split(' → ')[1])).toEqual(['200'])

    const manifest = await c.manifestText(ref, 'pause')
    expect(manifest).toBeDefined()
    const digest = await c.pushManifest(ref, `copy-${RUN}`, manifest!.mediaType, manifest!.text)
    expect(digest).toBe(manifest!.digest)
    expect(await c.headDigest(parseImageRef(`${REG()}/${ref.repository}:copy-${RUN}`))).toBe(manifest!.digest)
    // Two tokens: pull,push for the writes (and the HEAD before one), pull for the reads.
    expect(http.tokenRequests().map((s) => decodeURIComponent(/scope=(\S+)/.exec(s)![1]!))).toEqual([
      `repository:${ref.repository}:pull,push`,
      `repository:${ref.repository}:pull`,
    ])
  })

  test('outside the token’s scope: one line naming the repository and the scope the registry asked for', async () => {
    const other = parseImageRef(`${REG()}/other/it-tok-${RUN}:x`)
    // The HEAD before the upload is refused first: distribution's challenge names `pull` for it.
    await expect(client(aliceConfig).pushBlob(other, '{}')).rejects.toThrow(
      new RegExp(
        `^registry ${escape(REG())} refused repository:other/it-tok-${RUN}:pull \\(insufficient_scope\\): the token does not grant pull on other/it-tok-${RUN}; ${escape(tried(aliceConfig))}: use a credential with pull access to other/it-tok-${RUN}$`,
      ),
    )
  })
})

describe('builds pushed to the token registry', () => {
  const http = new RecordingTransport()
  afterAll(() => http.close())
  const MODEL = () => rigEnv('FIXTURE_MODEL')
  const facts = async () => modelFacts(await inspectModel(mlflowClient(http), `models:/${MODEL()}/1`))

  async function planAndBuild(repository: string, config: string, builder?: string) {
    const image = imageInputs({ runtime: 'kserve', repository, builder })
    const model = await facts()
    const deps = () => imageDeps({ dockerConfig: config })
    const p: ImagePlan = await planServingImage(deps(), { image, model, generatorVersion: '0.1.0-it' })
    expect(p.decision).toBe('build')
    const mlflow = mlflowClient(http)
    const details = await inspectModel(mlflow, `models:/${MODEL()}/1`)
    const downloaded = await mlflow.download(details, { workDir: await mkdtemp(join(tmpdir(), 'it-tok-model-')) })
    const out = await buildServingImage(deps(), { image, plan: p, modelDir: downloaded.dir, network: 'host' })
    expect(out.image).toBe(`${repository}@${out.digest}`)
    const again = await planServingImage(deps(), { image, model, generatorVersion: '0.1.0-it' })
    expect(again.decision).toBe('hit')
    expect(again.digest).toBe(out.digest)
    return out
  }

  test(
    'the docker driver: plan (a miss, push access checked), build and push, then a cache hit',
    async () => {
      await planAndBuild(`${REG()}/${USER()}/it-tok-docker-${RUN}`, aliceConfig)
    },
    SLOW,
  )

  test(
    'the BuildKit builder: the same, the builder pushing with the job’s login (an identity token)',
    async () => {
      // Not the password: BuildKit asks for tokens with OAuth2's password grant (POST), which
      // this token server refuses with 400, and BuildKit falls back to GET only after 401, 404
      // or 405 (test/integration/rig/token-registry.test.ts). A refresh token goes by POST.
      const config = await buildkitDockerConfig(await identityConfig(await refreshToken()))
      await planAndBuild(`${REG()}/${USER()}/it-tok-bk-${RUN}`, config, rigEnv('BUILDKIT_BUILDER'))
    },
    SLOW,
  )

  test(
    'the BuildKit builder with an SBOM: scanned for version 1 and remembered, attached to version 2, through Bearer tokens',
    async () => {
      const config = await buildkitDockerConfig(await identityConfig(await refreshToken()))
      const repository = `${REG()}/${USER()}/it-tok-sbom-${RUN}`
      const image = imageInputs({
        runtime: 'kserve',
        repository,
        builder: rigEnv('BUILDKIT_BUILDER'),
        attestations: { sbom: rigEnv('SBOM_GENERATOR_IMAGE') },
      })
      const mlflow = mlflowClient(http)
      const logs: string[] = []
      // Requirements of this run's own: one cache record per step, so both versions get the same layers.
      const model = `it-tok-sbom-${RUN}`
      await registerWithOwnRequirements(model, `mk8sd-tok-${RUN}`)
      for (const version of ['1', '2']) {
        const deps = imageDeps({ dockerConfig: config })
        const details = await inspectModel(mlflow, `models:/${model}/${version}`)
        const p = await planServingImage(deps, { image, model: modelFacts(details), generatorVersion: '0.1.0-it' })
        const downloaded = await mlflow.download(details, { workDir: await mkdtemp(join(tmpdir(), 'it-tok-model-')) })
        const out = await buildServingImage(deps, { image, plan: p, modelDir: downloaded.dir, network: 'host' })
        expect(await client(aliceConfig).headDigest(parseImageRef(p.ref))).toBe(out.digest)
        logs.push(deps.log.lines.filter((l) => l.startsWith('SBOM: ')).join('\n'))
      }
      expect(logs[0]).toMatch(/SBOM: remembered for the next build on these layers as sbom-[0-9a-f]{40}/)
      expect(logs[1]).toMatch(/SBOM: these layers were scanned before \(sbom-[0-9a-f]{40}\): attached to /)
      await deleteRegisteredModel(model)
    },
    SLOW,
  )

  test(
    'the BuildKit builder with a password login: the token service’s 400 to its password grant is one line with the fix',
    async () => {
      const repository = `${REG()}/${USER()}/it-tok-bk-pw-${RUN}`
      const image = imageInputs({ runtime: 'kserve', repository, builder: rigEnv('BUILDKIT_BUILDER') })
      const config = await buildkitDockerConfig(aliceConfig)
      const deps = imageDeps({ dockerConfig: config })
      // The plan's own push check passes: the action asks tokens by GET, which this service answers.
      const p = await planServingImage(deps, { image, model: await facts(), generatorVersion: '0.1.0-it' })
      const mlflow = mlflowClient(http)
      const details = await inspectModel(mlflow, `models:/${MODEL()}/1`)
      const downloaded = await mlflow.download(details, { workDir: await mkdtemp(join(tmpdir(), 'it-tok-model-')) })
      await expect(
        buildServingImage(deps, { image, plan: p, modelDir: downloaded.dir, network: 'host' }),
      ).rejects.toThrow(
        new RegExp(
          `^pushing ${escape(repository)}:\\S+ failed: the registry's token service \\(http://127\\.0\\.0\\.1:\\d+/token/\\) refused BuildKit's OAuth2 password grant with HTTP 400`,
        ),
      )
    },
    SLOW,
  )

  test('a repository outside the scope fails at the plan, before any model download or build', async () => {
    const image = imageInputs({ runtime: 'kserve', repository: `${REG()}/other/it-tok-${RUN}` })
    const model = await facts()
    const before = http.urls.length
    const deps = imageDeps({ dockerConfig: aliceConfig })
    // The tag does not exist (HEAD/GET is refused for pull too, so the plan names pull first).
    await expect(planServingImage(deps, { image, model, generatorVersion: '0.1.0-it' })).rejects.toThrow(
      /^registry \S+ refused repository:other\/it-tok-\S+:pull \(insufficient_scope\)/,
    )
    expect(http.urls.slice(before).some((u) => u.includes('/artifacts/'))).toBe(false)
  })
})

test('a token past its expires_in is renewed before use, and the registry takes the new one', async () => {
  // The server's lifetime is 15 min; the client's clock is moved past it instead of waiting.
  let clock = Date.now()
  const http = new CountingHttp()
  const c = client(aliceConfig, http, () => clock)
  const ref = parseImageRef(OWN())
  const digest = await c.headDigest(ref)
  await c.headDigest(ref)
  expect(http.tokenRequests()).toHaveLength(1)
  clock += 15 * 60 * 1000
  const from = http.seen.length
  expect(await c.headDigest(ref)).toBe(digest)
  const after = http.seen.slice(from)
  // A new token first, then the registry request with it: no 401 round trip.
  expect(after).toHaveLength(2)
  expect(after[0]!.startsWith(`GET ${REALM()}`)).toBe(true)
  expect(after[1]).toMatch(/ Bearer → 200$/)
})

describe('a rotated signing key (stands in for expiry: the token server fixes lifetimes at 15 min)', () => {
  afterAll(() => tokenRegistryOnKey('primary'), SLOW)

  test(
    'the registry stops taking the cached token: the client renews once and succeeds',
    async () => {
      const http = new CountingHttp()
      const c = client(aliceConfig, http)
      const ref = parseImageRef(OWN())
      const digest = await c.headDigest(ref)
      expect(http.tokenRequests()).toHaveLength(1)
      await tokenRegistryOnKey('rotated')
      const from = http.seen.length
      expect(await c.headDigest(ref)).toBe(digest)
      const after = http.seen.slice(from)
      // The cached token refused (invalid_token), one new token, one retry.
      expect(after).toEqual([
        expect.stringMatching(/^HEAD \S+\/manifests\/pause Bearer → 401$/),
        expect.stringMatching(/^GET \S+ Basic → 200$/),
        expect.stringMatching(/^HEAD \S+\/manifests\/pause Bearer → 200$/),
      ])
      expect(http.tokenRequests()).toHaveLength(2)
    },
    SLOW,
  )
})
