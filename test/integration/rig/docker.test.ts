// The rig's image side, against the real servers: the Docker engine with buildx, the open and the
// authenticated OCI registries, the MLServer serving base image, and MLServer from the host venv.
// A server that cannot be reached fails these tests; nothing is skipped.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rigEnv } from '../rig-env.js'

const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ')

// jest's testTimeout is global-only (ignored in a project config): give each test its own.
const SLOW = 180_000

const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
const scratch = mkdtempSync(join(tmpdir(), 'rig-docker-test-'))

interface Run {
  stdout: string
  stderr: string
}

/** The rig's docker client against the rig daemon; rejects with the output on failure. */
function docker(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      rigEnv('DOCKER_CLI'),
      args,
      {
        env: { ...process.env, DOCKER_HOST: rigEnv('DOCKER_HOST'), ...env },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 170_000,
      },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`docker ${args.join(' ')} failed: ${err.message}\n${stderr}`))
        else resolve({ stdout, stderr })
      },
    )
  })
}

/** Splits `host:port/repo:tag` into what the V2 API wants. */
function parseRef(ref: string): { registry: string; repo: string; tag: string } {
  const slash = ref.indexOf('/')
  const registry = ref.slice(0, slash)
  const rest = ref.slice(slash + 1)
  const colon = rest.lastIndexOf(':')
  return { registry, repo: rest.slice(0, colon), tag: rest.slice(colon + 1) }
}

function headManifest(registry: string, repo: string, reference: string, headers: Record<string, string> = {}) {
  return fetch(`http://${registry}/v2/${repo}/manifests/${reference}`, {
    method: 'HEAD',
    headers: { Accept: MANIFEST_ACCEPT, ...headers },
  })
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe('docker engine', () => {
  test(
    'the rig daemon is Debian 20.10 and the client negotiates its API',
    async () => {
      const { stdout } = await docker([
        'version',
        '--format',
        '{{.Server.Version}} {{.Server.APIVersion}} {{.Client.APIVersion}}',
      ])
      const [server, serverApi, clientApi] = stdout.trim().split(' ')
      expect(server).toMatch(/^20\.10\./)
      expect(serverApi).toBe('1.41')
      expect(clientApi).toBe('1.41') // negotiated down (the 28.x client speaks 1.50)
    },
    SLOW,
  )

  test(
    'docker buildx version works against the rig daemon, with the docker driver',
    async () => {
      const version = await docker(['buildx', 'version'])
      expect(version.stdout).toMatch(/github\.com\/docker\/buildx v?\d+\.\d+\.\d+/)
      const inspect = await docker(['buildx', 'inspect'])
      expect(inspect.stdout).toMatch(/Driver:\s+docker\b/)
      expect(inspect.stdout).toMatch(/Status:\s+running/)
    },
    SLOW,
  )
})

describe('open registry', () => {
  const ref = () => `${rigEnv('REGISTRY')}/rig-test/tiny:${suffix}`
  let pushedDigest = ''

  afterAll(async () => {
    if (pushedDigest) {
      const { registry, repo } = parseRef(ref())
      await fetch(`http://${registry}/v2/${repo}/manifests/${pushedDigest}`, { method: 'DELETE' })
    }
    await docker(['rmi', '-f', ref()]).catch(() => undefined)
  }, SLOW)

  test(
    'buildx --push --metadata-file: the pushed digest is what the registry serves',
    async () => {
      const ctx = join(scratch, 'tiny')
      rmSync(ctx, { recursive: true, force: true })
      mkdirSync(ctx, { recursive: true })
      writeFileSync(
        join(ctx, 'Dockerfile'),
        `FROM local/debian:bookworm\nRUN echo ${suffix} >/rig-test\nLABEL io.mlflow-k8s-deploy.rig.test="${suffix}"\n`,
      )
      const meta = join(scratch, 'tiny-metadata.json')
      await docker(['buildx', 'build', '--network', 'host', '--push', '--metadata-file', meta, '-t', ref(), ctx])

      const metadata = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, unknown>
      const digest = metadata['containerimage.digest']
      expect(typeof digest).toBe('string')
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/)
      pushedDigest = digest as string

      const { registry, repo, tag } = parseRef(ref())
      const head = await headManifest(registry, repo, tag)
      expect(head.status).toBe(200)
      expect(head.headers.get('docker-content-digest')).toBe(digest)
      expect(head.headers.get('content-type')).toMatch(/manifest/)
    },
    SLOW,
  )
})

describe('authenticated registry', () => {
  const registry = () => rigEnv('REGISTRY_AUTH')
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

  /** Answers the registry's challenge the way a client must: Basic, or a Bearer token from the realm. */
  async function authorization(challenge: string, user: string, password: string): Promise<string> {
    const scheme = challenge.split(' ')[0]?.toLowerCase()
    if (scheme === 'basic') return basic(user, password)
    if (scheme === 'bearer') {
      const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
      const url = new URL(params['realm'] ?? '')
      if (params['service']) url.searchParams.set('service', params['service'])
      if (params['scope']) url.searchParams.set('scope', params['scope'])
      const res = await fetch(url, { headers: { Authorization: basic(user, password) } })
      expect(res.status).toBe(200)
      const body = (await res.json()) as { token?: string; access_token?: string }
      return `Bearer ${body.token ?? body.access_token}`
    }
    throw new Error(`unexpected challenge: ${challenge}`)
  }

  test(
    'answers 401 with a WWW-Authenticate challenge without credentials',
    async () => {
      const res = await fetch(`http://${registry()}/v2/`)
      expect(res.status).toBe(401)
      const challenge = res.headers.get('www-authenticate')
      expect(challenge).toMatch(/^(Basic|Bearer) realm="[^"]+"/)
    },
    SLOW,
  )

  test(
    'answers 200 through the challenge flow with the rig credentials, 401 with a wrong password',
    async () => {
      const challenge = (await fetch(`http://${registry()}/v2/`)).headers.get('www-authenticate') ?? ''
      const good = await authorization(challenge, rigEnv('REGISTRY_AUTH_USER'), rigEnv('REGISTRY_AUTH_PASSWORD'))
      const ok = await fetch(`http://${registry()}/v2/`, { headers: { Authorization: good } })
      expect(ok.status).toBe(200)

      const bad = await fetch(`http://${registry()}/v2/`, {
        headers: { Authorization: basic(rigEnv('REGISTRY_AUTH_USER'), 'wrong') },
      })
      expect(bad.status).toBe(401)
    },
    SLOW,
  )

  test(
    'DOCKER_CONFIG_AUTH logs the docker client in: push, then the manifest is there only with credentials',
    async () => {
      const config = JSON.parse(readFileSync(join(rigEnv('DOCKER_CONFIG_AUTH'), 'config.json'), 'utf8')) as {
        auths: Record<string, unknown>
      }
      expect(Object.keys(config.auths)).toContain(registry())

      const ref = `${registry()}/rig-test/auth-tiny:${suffix}`
      await docker(['tag', 'local/debian:bookworm', ref])
      try {
        await docker(['push', ref], { DOCKER_CONFIG: rigEnv('DOCKER_CONFIG_AUTH') })
        const { repo, tag } = parseRef(ref)
        expect((await headManifest(registry(), repo, tag)).status).toBe(401)
        const auth = basic(rigEnv('REGISTRY_AUTH_USER'), rigEnv('REGISTRY_AUTH_PASSWORD'))
        const head = await headManifest(registry(), repo, tag, { Authorization: auth })
        expect(head.status).toBe(200)
        const digest = head.headers.get('docker-content-digest')
        expect(digest).toMatch(/^sha256:/)
        await fetch(`http://${registry()}/v2/${repo}/manifests/${digest}`, {
          method: 'DELETE',
          headers: { Authorization: auth },
        })
      } finally {
        await docker(['rmi', ref]).catch(() => undefined)
      }
    },
    SLOW,
  )
})

describe('serving base image', () => {
  test(
    'is in the open registry at BASE_IMAGE_DIGEST, with readable config labels',
    async () => {
      const { registry, repo, tag } = parseRef(rigEnv('BASE_IMAGE'))
      const res = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, {
        headers: { Accept: MANIFEST_ACCEPT },
      })
      expect(res.status).toBe(200)
      expect(res.headers.get('docker-content-digest')).toBe(rigEnv('BASE_IMAGE_DIGEST'))
      const manifest = (await res.json()) as { config: { digest: string } }

      const blob = await fetch(`http://${registry}/v2/${repo}/blobs/${manifest.config.digest}`)
      expect(blob.status).toBe(200)
      const config = (await blob.json()) as {
        config: { Labels?: Record<string, string>; User?: string; WorkingDir?: string; Env?: string[] }
      }
      const labels = config.config.Labels ?? {}
      expect(labels['org.opencontainers.image.title']).toBe('mlserver-base')
      expect(labels['io.mlflow-k8s-deploy.rig.mlserver-version']).toMatch(/^1\.7\.\d+$/)
      expect(labels['io.mlflow-k8s-deploy.rig.mlflow-version']).toMatch(/^3\.\d+\.\d+$/)
      expect(tag).toBe(
        `${labels['io.mlflow-k8s-deploy.rig.mlserver-version']}-py${labels['io.mlflow-k8s-deploy.rig.python-version']}`,
      )
      expect(config.config.User).toBe('1000')
      expect(config.config.WorkingDir).toBe('/opt/mlserver')
      expect(config.config.Env).toContain('MLSERVER_MODELS_DIR=/mnt/models')
    },
    SLOW,
  )
})

describe('MLServer from the host venv', () => {
  let child: ChildProcess | undefined
  let exited: Promise<void> | undefined
  let output = ''

  afterAll(async () => {
    if (child?.pid && child.exitCode === null) {
      process.kill(-child.pid, 'SIGTERM') // its own process group: the server and its workers
      const timer = setTimeout(() => {
        try {
          if (child?.pid) process.kill(-child.pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }, 15_000)
      await exited
      clearTimeout(timer)
    }
  }, SLOW)

  test(
    'starts on a free loopback port with an empty model repository and is ready',
    async () => {
      const [http, grpc, metrics] = [await freePort(), await freePort(), await freePort()]
      const repo = join(scratch, 'models')
      mkdirSync(repo, { recursive: true })
      child = spawn(rigEnv('MLSERVER_BIN'), ['start', repo], {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          MLSERVER_HOST: '127.0.0.1',
          MLSERVER_HTTP_PORT: String(http),
          MLSERVER_GRPC_PORT: String(grpc),
          MLSERVER_METRICS_PORT: String(metrics),
        },
      })
      exited = new Promise((resolve) => child?.once('exit', () => resolve()))
      child.stdout?.on('data', (c: Buffer) => (output += c.toString()))
      child.stderr?.on('data', (c: Buffer) => (output += c.toString()))

      const deadline = Date.now() + 90_000
      let status = 0
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`mlserver exited with ${child.exitCode}:\n${output}`)
        try {
          status = (await fetch(`http://127.0.0.1:${http}/v2/health/ready`, { signal: AbortSignal.timeout(2000) }))
            .status
          if (status === 200) break
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 300))
      }
      expect(status).toBe(200)

      const live = await fetch(`http://127.0.0.1:${http}/v2/health/live`)
      expect(live.status).toBe(200)
      const index = await fetch(`http://127.0.0.1:${http}/v2/repository/index`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      })
      expect(index.status).toBe(200)
      expect(await index.json()).toEqual([])
    },
    SLOW,
  )
})
