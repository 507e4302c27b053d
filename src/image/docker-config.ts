// Registry credentials from the Docker client's config, as docker/login-action and the cloud login
// actions leave them: `auths` (base64 `auth`, username/password, identitytoken, registrytoken),
// per-registry `credHelpers`, and the global `credsStore`, both run as docker-credential-<name>.
// Secrets are masked the moment they are read.
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { DeployError } from '../util/errors.js'
import type { Exec } from './exec.js'
import { DOCKER_HUB } from './reference.js'

export interface RegistryCredential {
  readonly username: string | undefined
  readonly secret: string
  /**
   * `basic`: username + password (Basic auth, or a token request with Basic).
   * `identity-token`: an OAuth2 refresh token for the token endpoint.
   * `registry-token`: a bearer token sent as is.
   */
  readonly kind: 'basic' | 'identity-token' | 'registry-token'
  /** Where it came from, for error messages: never the value. */
  readonly source: string
}

export interface CredentialSource {
  get(registry: string): Promise<RegistryCredential | undefined>
}

interface DockerConfigFile {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }
  >
  credHelpers?: Record<string, string>
  credsStore?: string
}

/** The server key Docker Hub credentials are stored under. */
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/'

/** A config key (bare host, or a URL with scheme and path) as the registry host it names. */
export function normalizeRegistryKey(key: string): string {
  let host = key.trim().replace(/^[a-z]+:\/\//i, '')
  host = host.split('/')[0]!.toLowerCase()
  if (['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'].includes(host))
    return DOCKER_HUB
  return host
}

export function dockerConfigPath(env: Readonly<Record<string, string | undefined>>, home = homedir()): string {
  return join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json')
}

export interface DockerConfigOptions {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly exec: Exec
  readonly mask: (secret: string) => void
  readonly home?: string
}

export class DockerConfigCredentials implements CredentialSource {
  readonly path: string
  private config: Promise<DockerConfigFile | undefined> | undefined
  private readonly found = new Map<string, Promise<RegistryCredential | undefined>>()

  constructor(private readonly options: DockerConfigOptions) {
    this.path = dockerConfigPath(options.env, options.home)
  }

  /** Credentials for a registry host (as in ImageRef.registry), or undefined. */
  get(registry: string): Promise<RegistryCredential | undefined> {
    const host = normalizeRegistryKey(registry)
    let p = this.found.get(host)
    if (!p) {
      p = this.lookup(host)
      this.found.set(host, p)
    }
    return p
  }

  private async lookup(host: string): Promise<RegistryCredential | undefined> {
    const config = await this.read()
    if (!config) return undefined
    const helper = findKey(config.credHelpers, host)
    if (helper) return this.fromHelper(config.credHelpers![helper]!, host, `credHelpers["${helper}"] in ${this.path}`)
    const authKey = findKey(config.auths, host)
    const fromFile = authKey
      ? this.fromAuths(config.auths![authKey]!, `auths["${authKey}"] in ${this.path}`)
      : undefined
    if (fromFile) return fromFile
    if (config.credsStore)
      return this.fromHelper(config.credsStore, host, `credsStore "${config.credsStore}" in ${this.path}`)
    return undefined
  }

  private read(): Promise<DockerConfigFile | undefined> {
    this.config ??= readFile(this.path, 'utf8').then(
      (text) => {
        try {
          return JSON.parse(text) as DockerConfigFile
        } catch (err) {
          throw new DeployError(`the Docker config ${this.path} is not valid JSON: ${(err as Error).message}`)
        }
      },
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined
        throw new DeployError(`cannot read the Docker config ${this.path}: ${err.message}`)
      },
    )
    return this.config
  }

  private fromAuths(
    entry: NonNullable<DockerConfigFile['auths']>[string],
    source: string,
  ): RegistryCredential | undefined {
    const { mask } = this.options
    if (entry.identitytoken) {
      mask(entry.identitytoken)
      // `docker login` keeps the user beside the token as auth = base64("user:"), for messages.
      const user =
        entry.username ?? (entry.auth ? Buffer.from(entry.auth, 'base64').toString('utf8').split(':')[0] : '')
      return { username: user || undefined, secret: entry.identitytoken, kind: 'identity-token', source }
    }
    if (entry.registrytoken) {
      mask(entry.registrytoken)
      return { username: undefined, secret: entry.registrytoken, kind: 'registry-token', source }
    }
    let username = entry.username
    let password = entry.password
    if (entry.auth) {
      mask(entry.auth)
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon < 0) throw new DeployError(`${source}: "auth" is not base64 of "user:password"`)
      username = decoded.slice(0, colon)
      password = decoded.slice(colon + 1)
    }
    if (!password) return undefined
    mask(password)
    return { username, secret: password, kind: 'basic', source }
  }

  private async fromHelper(name: string, host: string, source: string): Promise<RegistryCredential | undefined> {
    const program = `docker-credential-${name}`
    const serverUrl = host === DOCKER_HUB ? DOCKER_HUB_SERVER : host
    const res = await this.options.exec(program, ['get'], { input: serverUrl, env: this.helperEnv() })
    if (res.exitCode !== 0) {
      const said = lastLine(res.stdout + '\n' + res.stderr)
      if (/credentials not found/i.test(said)) return undefined
      if (res.exitCode === 127)
        throw new DeployError(
          `${program} (${source}) is not installed or not on PATH: install it or remove it from the Docker config`,
        )
      throw new DeployError(`${program} get (${source}) failed with exit code ${res.exitCode}: ${said}`)
    }
    let answer: { Username?: string; Secret?: string }
    try {
      answer = JSON.parse(res.stdout) as { Username?: string; Secret?: string }
    } catch {
      throw new DeployError(`${program} get (${source}) did not answer JSON`)
    }
    if (!answer.Secret) return undefined
    this.options.mask(answer.Secret)
    const helperSource = `${program} (${source})`
    // The literal user "<token>" marks an identity (refresh) token, per docker-credential-helpers.
    if (answer.Username === '<token>')
      return { username: undefined, secret: answer.Secret, kind: 'identity-token', source: helperSource }
    return { username: answer.Username, secret: answer.Secret, kind: 'basic', source: helperSource }
  }

  private helperEnv(): Record<string, string> {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(this.options.env)) if (v !== undefined) env[k] = v
    return env
  }
}

function findKey(map: Record<string, unknown> | undefined, host: string): string | undefined {
  if (!map) return undefined
  return Object.keys(map).find((k) => normalizeRegistryKey(k) === host)
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  return lines[lines.length - 1] ?? '(no output)'
}
