// Faults provoked for real on the rig, each with the message a user gets.
import { createHash } from 'node:crypto'
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Buildx } from '../../../src/image/buildx.js'
import { createBuildContext, writeBuildFiles } from '../../../src/image/context.js'
import { actionsExec, type Exec } from '../../../src/image/exec.js'
import { planServingImage, type ModelFacts } from '../../../src/image/index.js'
import { parseImageRef } from '../../../src/image/reference.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'
import { deleteRegisteredModel, python } from '../mlflow/helpers.js'
import { runDist } from '../../support/run-dist.js'
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
  planServingImage(deps, { image: imageInputs(over), model: FACTS, generatorVersion: '0.1.0-it' })

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
      await expect(build(buildx({}, hidden), '')).rejects.toThrow(
        /docker buildx is not installed: add docker\/setup-buildx-action before this step, or install the docker-buildx package/,
      )
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

describe('through the bundled action', () => {
  test(
    "a model whose requirements fail to install: the end of pip's output reaches the ::error:: annotation and the summary",
    async () => {
      // A model of our own: wine-classifier v1's files with a requirement no index has.
      const name = `it-defects-pip-${RUN}`
      await python(
        `
import json, os, tempfile, mlflow
d = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{os.environ['FIXTURE']}/1", dst_path=tempfile.mkdtemp())
with open(os.path.join(d, "requirements.txt"), "a") as f:
    f.write("\\nno-such-package-mlflow-k8s-deploy==9.9.9\\n")
mlflow.set_experiment("it-defects")
with mlflow.start_run() as run:
    mlflow.log_artifacts(d, "model")
mlflow.register_model(f"runs:/{run.info.run_id}/model", os.environ["NAME"])
print(json.dumps("ok"))
`,
        { MLFLOW_TRACKING_URI: rigEnv('MLFLOW_URI'), NAME: name, FIXTURE: rigEnv('FIXTURE_MODEL') },
      )
      // A deploy: it passes every check of the plan phase, then the build fails.
      const r = await runDist(
        {
          'model-uri': `models:/${name}/1`,
          'tracking-uri': rigEnv('MLFLOW_URI'),
          'image-repository': `${rigEnv('REGISTRY')}/it-faults-${RUN}`,
          'base-image': rigEnv('BASE_IMAGE'),
          'build-network': 'host',
          namespace: 'deploy',
          name: `it-faults-pip-${RUN}`,
          // pip's own words (the kserve base would install with uv).
          'build-args': 'INSTALLER: pip',
        },
        { DOCKER_HOST: rigEnv('DOCKER_HOST'), KUBECONFIG: rigEnv('KUBECONFIG_DEPLOYER') },
      ).finally(() => deleteRegisteredModel(name))
      const pipSaid = 'ERROR: No matching distribution found for no-such-package-mlflow-k8s-deploy==9.9.9'
      expect(r.status).not.toBe(0)
      expect(r.errors).toHaveLength(1)
      // @actions/core encodes the newlines of an annotation as %0A: one ::error:: line, every line of it.
      expect(r.errors[0]).toMatch(
        /^::error::build image: the model's requirements failed to install\. The end of pip's output:%0A.+/,
      )
      expect(r.errors[0]!.split('%0A')).toContain(pipSaid)
      // The summary keeps it line for line (a code block under the failure).
      expect(r.summary.split('\n')).toContain(pipSaid)
    },
    SLOW,
  )
})

// ----- Bearer token auth: the rig's authenticated registry takes Basic (htpasswd) only, so the
// token flow runs against a loopback token server in front of the real open registry. The proxy
// forwards requests carrying a token it issued and still honours; everything else gets the
// Bearer challenge. The image behind it is a real one, pushed to the real registry below.

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** A one-config, no-layer image pushed to the open registry over the distribution API. */
async function pushTinyImage(repository: string, tag: string, labels: Record<string, string>): Promise<string> {
  const registry = `http://${rigEnv('REGISTRY')}`
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: labels } }))
  const start = await fetch(`${registry}/v2/${repository}/blobs/uploads/`, { method: 'POST' })
  expect(start.status).toBe(202)
  const upload = new URL(start.headers.get('location')!, registry)
  upload.searchParams.set('digest', sha(config))
  const put = await fetch(upload, {
    method: 'PUT',
    body: config,
    headers: { 'content-type': 'application/octet-stream' },
  })
  expect(put.status).toBe(201)
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [],
  })
  const res = await fetch(`${registry}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  })
  expect(res.status).toBe(201)
  return res.headers.get('docker-content-digest')!
}

interface TokenRequest {
  method: string
  authorization?: string
  query: Record<string, string>
  form: Record<string, string>
}

/** Token server + proxy in one loopback listener; `honour` decides which issued tokens still work. */
async function tokenProxy(
  answer: (req: TokenRequest) => { status: number; body: unknown } = () => ({ status: 200, body: {} }),
) {
  const issued: string[] = []
  const tokenRequests: TokenRequest[] = []
  const state = { honour: (_token: string) => true }
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://proxy')
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    if (url.pathname === '/token') {
      const t: TokenRequest = {
        method: req.method!,
        authorization: req.headers.authorization,
        query: Object.fromEntries(url.searchParams),
        form: Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString())),
      }
      tokenRequests.push(t)
      const a = answer(t)
      let body = a.body
      if (a.status === 200) {
        const token = `tok-${issued.length + 1}`
        issued.push(token)
        body = { access_token: token, expires_in: 300, ...(a.body as object) }
      }
      res.writeHead(a.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
      return
    }
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    if (!token || !issued.includes(token) || !state.honour(token)) {
      const repo = /^\/v2\/(.+)\/(manifests|blobs|tags)\//.exec(url.pathname)?.[1]
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="${base}/token",service="rig-proxy"${repo ? `,scope="repository:${repo}:pull"` : ''}`,
      })
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }))
      return
    }
    const upstream = await fetch(`http://${rigEnv('REGISTRY')}${url.pathname}${url.search}`, {
      method: req.method,
      headers: { accept: String(req.headers.accept ?? '*/*') },
      redirect: 'manual',
    })
    const headers: Record<string, string> = {}
    upstream.headers.forEach((v, k) => {
      if (!['transfer-encoding', 'connection', 'content-encoding'].includes(k)) headers[k] = v
    })
    res.writeHead(upstream.status, headers)
    res.end(req.method === 'HEAD' ? undefined : Buffer.from(await upstream.arrayBuffer()))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  const base = `http://${host}`
  return {
    host,
    issued,
    tokenRequests,
    state,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  }
}

describe('registry Bearer auth (loopback token server, real open registry behind it)', () => {
  const repository = `it-defects-auth-${RUN}`
  let digest: string
  beforeAll(async () => {
    digest = await pushTinyImage(repository, 'v1', { 'mlflow-k8s-deploy.identity': 'tiny' })
  })

  test('a cached token the registry no longer takes is replaced by a fresh one, once', async () => {
    const proxy = await tokenProxy()
    try {
      const { registry } = imageDeps()
      const ref = parseImageRef(`${proxy.host}/${repository}:v1`)
      expect((await registry.inspect(ref))?.labels['mlflow-k8s-deploy.identity']).toBe('tiny')
      expect(proxy.issued).toEqual(['tok-1'])
      // The registry stops honouring tok-1 (revoked, signing key rotated) while it is still cached.
      proxy.state.honour = (t) => t !== 'tok-1'
      expect(await registry.headDigest(ref)).toBe(digest)
      expect(proxy.issued).toEqual(['tok-1', 'tok-2'])
    } finally {
      await proxy.close()
    }
  })

  test('a fresh token refused as well: one renewal, then a clear error', async () => {
    const proxy = await tokenProxy()
    try {
      const { registry } = imageDeps()
      const ref = parseImageRef(`${proxy.host}/${repository}:v1`)
      expect(await registry.headDigest(ref)).toBe(digest)
      proxy.state.honour = () => false
      await expect(registry.inspect(ref)).rejects.toThrow(
        `registry ${proxy.host} refused access to ${repository} (HTTP 401: UNAUTHORIZED: authentication required) with a freshly issued token from http://${proxy.host}/token; no credentials for ${proxy.host} were found in the Docker config`,
      )
      expect(proxy.issued).toEqual(['tok-1', 'tok-2'])
    } finally {
      await proxy.close()
    }
  })

  test('an identity token from the Docker config is exchanged with the refresh_token grant, never sent as Basic', async () => {
    // What `docker login` with a refresh token (and az acr login) leaves in config.json.
    const proxy = await tokenProxy((t) =>
      t.method === 'POST' && t.form.grant_type === 'refresh_token' && t.form.refresh_token === 'idt-abc-123'
        ? { status: 200, body: {} }
        : { status: 401, body: { details: 'incorrect username or password' } },
    )
    try {
      const dir = await mkdtemp(join(tmpdir(), 'docker-config-'))
      await writeFile(
        join(dir, 'config.json'),
        JSON.stringify({ auths: { [proxy.host]: { identitytoken: 'idt-abc-123' } } }),
      )
      const deps = imageDeps({ dockerConfig: dir })
      const ref = parseImageRef(`${proxy.host}/${repository}:v1`)
      expect(await deps.registry.headDigest(ref)).toBe(digest)
      expect(proxy.tokenRequests).toEqual([
        {
          method: 'POST',
          authorization: undefined,
          query: {},
          form: {
            grant_type: 'refresh_token',
            refresh_token: 'idt-abc-123',
            service: 'rig-proxy',
            scope: `repository:${repository}:pull`,
            client_id: 'docker',
          },
        },
      ])
      expect(deps.masked).toContain('idt-abc-123')
    } finally {
      await proxy.close()
    }
  })

  test('an identity token the token server refuses: the error names the credential, not its value', async () => {
    const proxy = await tokenProxy(() => ({ status: 400, body: { error: 'invalid_grant' } }))
    try {
      const dir = await mkdtemp(join(tmpdir(), 'docker-config-'))
      await writeFile(
        join(dir, 'config.json'),
        JSON.stringify({ auths: { [proxy.host]: { identitytoken: 'idt-old' } } }),
      )
      const err = await imageDeps({ dockerConfig: dir })
        .registry.headDigest(parseImageRef(`${proxy.host}/${repository}:v1`))
        .catch((e: Error) => e)
      expect((err as Error).message).toBe(
        `the token service of registry ${proxy.host} (http://${proxy.host}) refused the identity token for repository:${repository}:pull (HTTP 400: invalid_grant); tried an identity token from auths["${proxy.host}"] in ${join(dir, 'config.json')}: log in to the registry again (the identity token may have expired)`,
      )
      expect((err as Error).message).not.toContain('idt-old')
    } finally {
      await proxy.close()
    }
  })
})
