// How the rig reconciler runs a "revision": a container on the rig's Docker engine with host
// networking, or (InferenceService with a storageUri) MLServer from the host venv. Everything
// listens on 127.0.0.1 on ports picked from RIG_CONTAINER_PORT_MIN..MAX.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'

export const OWNER_LABEL = 'rig.mlflow-k8s-deploy/owner'
export const REVISION_LABEL = 'rig.mlflow-k8s-deploy/revision'
export const HASH_LABEL = 'rig.mlflow-k8s-deploy/template-hash'
export const PORT_LABEL = 'rig.mlflow-k8s-deploy/port'

/** A fact: from the environment, else from the rig's rig.env (re-read: parts may come up later). */
export function fact(key: string): string | undefined {
  if (process.env[key]) return process.env[key]
  const file = `${process.env.RIG_STATE ?? '/var/cache/mlflow-k8s-deploy-rig/state'}/rig.env`
  try {
    const line = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith(`${key}=`))
      .at(-1)
    return line?.slice(key.length + 1)
  } catch {
    return undefined
  }
}

function docker(args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = fact('DOCKER_CLI') ?? 'docker'
  const host = fact('DOCKER_HOST')
  if (!host) throw new Error('DOCKER_HOST fact missing: is the docker part up?')
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host }
  // Registry credentials, as imagePullSecrets would give them to the kubelet.
  const auth = fact('DOCKER_CONFIG_AUTH')
  if (auth) env.DOCKER_CONFIG = auth.endsWith('.json') ? auth.replace(/\/[^/]*$/, '') : auth
  return new Promise((resolve) => {
    execFile(cli, args, { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

// --- ports -------------------------------------------------------------------------------------
const taken = new Set<number>()
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}
/** n distinct free loopback ports from the rig's container range. */
export async function freePorts(n: number): Promise<number[]> {
  const min = Number(process.env.RIG_CONTAINER_PORT_MIN ?? 18000)
  const max = Number(process.env.RIG_CONTAINER_PORT_MAX ?? 18999)
  const out: number[] = []
  const start = min + Math.floor(Math.random() * (max - min + 1))
  for (let i = 0; i <= max - min && out.length < n; i++) {
    const p = min + ((start - min + i) % (max - min + 1))
    if (!taken.has(p) && (await portIsFree(p))) out.push(p)
  }
  if (out.length < n) throw new Error(`no free ports in ${min}..${max}`)
  out.forEach((p) => taken.add(p))
  return out
}
export function releasePorts(ports: number[]): void {
  ports.forEach((p) => taken.delete(p))
}
export function reservePort(p: number): void {
  taken.add(p)
}

// --- a running revision ------------------------------------------------------------------------
export interface Handle {
  kind: 'container' | 'process'
  id: string // container id or pid
  ports: number[] // [http, grpc, metrics]
  logFile?: string
  child?: ChildProcess
  exit?: { code: number } // set when a host process exited
}
export type Liveness = { running: true } | { running: false; exitCode: number; logs: string }

/** Only loopback registries: the rig never pulls from anywhere else (no Docker Hub here). */
function registryHost(image: string): string | undefined {
  const first = image.split('/')[0] ?? ''
  return image.includes('/') && /[.:]|^localhost$/.test(first) ? first : undefined
}

/** `docker pull`, as the kubelet (and Knative's digest resolution) would. Error text on failure. */
export async function pull(image: string): Promise<string | undefined> {
  const host = registryHost(image)
  if (!host || !/^(127\.0\.0\.1|localhost)(:\d+)?$/.test(host)) {
    return `the rig only pulls from registries on 127.0.0.1 (image registry: ${host ?? 'docker.io'})`
  }
  const r = await docker(['pull', '-q', image], 300_000)
  return r.code === 0 ? undefined : (r.stderr.trim().split('\n').at(-1) ?? `docker pull exited ${r.code}`)
}

export interface ContainerSpec {
  name: string // docker container name
  image: string
  env: Record<string, string>
  command?: string[]
  args?: string[]
  labels: Record<string, string>
}

export async function runContainer(spec: ContainerSpec, ports: number[]): Promise<Handle> {
  const args = ['run', '-d', '--network', 'host', '--name', spec.name]
  for (const [k, v] of Object.entries(spec.labels)) args.push('--label', `${k}=${v}`)
  for (const [k, v] of Object.entries(spec.env)) args.push('-e', `${k}=${v}`)
  const [entrypoint, ...cmdRest] = spec.command ?? []
  if (entrypoint) args.push('--entrypoint', entrypoint)
  args.push(spec.image, ...cmdRest, ...(spec.args ?? []))
  await docker(['rm', '-f', spec.name]) // a leftover of the same name from an earlier life
  const r = await docker(args)
  if (r.code !== 0) throw new Error(r.stderr.trim() || `docker run exited ${r.code}`)
  return { kind: 'container', id: r.stdout.trim(), ports }
}

/** MLServer from the host venv, its own process group, output to a log file. */
export function runHostMlserver(workDir: string, env: Record<string, string>, ports: number[]): Handle {
  const bin = fact('MLSERVER_BIN') ?? (fact('MLSERVER_VENV') ? `${fact('MLSERVER_VENV')}/bin/mlserver` : undefined)
  if (!bin) throw new Error('MLSERVER_BIN fact missing: is the mlserver part up?')
  mkdirSync(workDir, { recursive: true })
  const logFile = `${workDir}/mlserver.log`
  const fd = openSync(logFile, 'w')
  const child = spawn(bin, ['start', workDir], {
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, fd],
    detached: true,
  })
  closeSync(fd)
  const handle: Handle = { kind: 'process', id: String(child.pid), ports, logFile, child }
  child.on('exit', (code, signal) => (handle.exit = { code: code ?? (signal ? 128 : 1) }))
  child.on('error', () => (handle.exit = { code: 127 }))
  return handle
}

/** The lines worth reporting: the last error-looking ones if any, else the last few. */
function tail(text: string): string {
  const lines = text.trim().split('\n')
  const errors = lines.filter((l) => /error|exception|failed|fatal|traceback/i.test(l))
  return (errors.length ? errors.slice(-5) : lines.slice(-8)).join('\n')
}

export async function liveness(h: Handle): Promise<Liveness> {
  if (h.kind === 'process') {
    if (!h.exit) return { running: true }
    let logs = ''
    try {
      logs = tail(readFileSync(h.logFile ?? '', 'utf8'))
    } catch {
      // no log file: nothing to report
    }
    return { running: false, exitCode: h.exit.code, logs }
  }
  const r = await docker(['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', h.id])
  if (r.code !== 0) return { running: false, exitCode: -1, logs: 'container disappeared' }
  const [running, code] = r.stdout.trim().split(' ')
  if (running === 'true') return { running: true }
  const logs = await docker(['logs', '--tail', '200', h.id])
  return { running: false, exitCode: Number(code), logs: tail(`${logs.stdout}\n${logs.stderr}`) }
}

export async function stop(h: Handle): Promise<void> {
  if (h.kind === 'process') {
    killHostProcess(h)
    if (h.logFile) rmSync(h.logFile.replace(/\/[^/]*$/, ''), { recursive: true, force: true })
  } else {
    await docker(['rm', '-f', h.id])
  }
  releasePorts(h.ports)
}

/** Kill host MLServer process groups synchronously (reconciler shutdown). */
export function killHostProcess(h: Handle): void {
  if (h.kind === 'process' && !h.exit) {
    try {
      process.kill(-Number(h.id), 'SIGTERM')
    } catch {
      // already gone
    }
  }
}

export interface OwnedContainer {
  id: string
  running: boolean
  labels: Record<string, string>
}
/** Containers this reconciler started in an earlier life (found by label). */
export async function ownedContainers(): Promise<OwnedContainer[]> {
  const ls = await docker(['ps', '-aq', '--filter', `label=${OWNER_LABEL}`])
  const ids = ls.stdout.split('\n').filter(Boolean)
  if (!ids.length) return []
  const r = await docker(['inspect', '-f', '{{.Id}} {{.State.Running}} {{json .Config.Labels}}', ...ids])
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id = '', running, ...rest] = line.split(' ')
      return { id, running: running === 'true', labels: JSON.parse(rest.join(' ')) as Record<string, string> }
    })
}
export async function removeContainer(id: string): Promise<void> {
  await docker(['rm', '-f', id])
}
