// Image references as Docker reads them: `[host[:port]/]path[:tag][@sha256:hex]`. The first path
// component is a registry only when it looks like a host (has a '.' or a ':', or is `localhost`);
// otherwise the image lives on Docker Hub, whose API host is registry-1.docker.io and whose
// single-component names live under `library/`.
import { DeployError } from '../util/errors.js'

export interface ImageRef {
  /** The registry as users write it (docker.io for Docker Hub), with its port if any. */
  readonly registry: string
  /** Host[:port] that serves the distribution API. */
  readonly apiHost: string
  readonly repository: string
  readonly tag: string | undefined
  readonly digest: string | undefined
}

export const DOCKER_HUB = 'docker.io'
const DOCKER_HUB_API = 'registry-1.docker.io'
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
const DIGEST = /^sha256:[a-f0-9]{64}$/
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/

export function isDigest(s: string): boolean {
  return DIGEST.test(s)
}

export function isValidTag(s: string): boolean {
  return TAG.test(s)
}

/** Parses a reference; throws a DeployError that quotes it and says what is wrong. */
export function parseImageRef(input: string): ImageRef {
  const fail = (why: string): never => {
    throw new DeployError(`"${input}" is not a valid image reference: ${why}`)
  }
  const text = input.trim()
  if (!text) fail('it is empty')
  if (/\s/.test(text)) fail('it contains whitespace')

  let rest = text
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) fail(`"${digest}" is not a sha256 digest (sha256: and 64 lower-case hex digits)`)
  }

  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  // A colon after the last slash is a tag; before it, it is a registry port.
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag))
      fail(`tag "${tag}" may hold letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')`)
  }

  const parts = rest.split('/')
  let registry = DOCKER_HUB
  const first = parts[0] ?? ''
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first.toLowerCase()
    parts.shift()
    if (!HOST.test(registry)) fail(`"${first}" is not a registry host`)
    if (DOCKER_HUB_ALIASES.has(registry)) registry = DOCKER_HUB
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library')
  for (const p of parts) {
    if (!COMPONENT.test(p))
      fail(`repository component "${p}" must be lower-case letters and digits, separated by '.', '_', '__' or '-'`)
  }
  const repository = parts.join('/')
  if (repository.length > 255) fail('the repository name is longer than 255 characters')
  return {
    registry,
    apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry,
    repository,
    tag,
    digest,
  }
}

/** `registry/repository` as docker and buildx accept it. */
export function repositoryName(ref: Pick<ImageRef, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`
}

/** The reference with a tag (and no digest). */
export function withTag(ref: ImageRef, tag: string): ImageRef {
  return { ...ref, tag, digest: undefined }
}

/** Tag or digest as the registry's manifest endpoint takes it. */
export function manifestReference(ref: ImageRef): string {
  return ref.digest ?? ref.tag ?? 'latest'
}

export function formatImageRef(ref: ImageRef): string {
  let s = repositoryName(ref)
  if (ref.tag) s += `:${ref.tag}`
  if (ref.digest) s += `@${ref.digest}`
  return s
}

/** What a deployment should run: the repository pinned by digest, so a new image is a new revision. */
export function pinnedRef(ref: Pick<ImageRef, 'registry' | 'repository'>, digest: string): string {
  return `${repositoryName(ref)}@${digest}`
}

/**
 * Registries on loopback are spoken to over plain HTTP, as the Docker daemon treats 127.0.0.0/8
 * as insecure by default; every other registry over HTTPS.
 */
export function isLoopbackRegistry(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)
}

export function registryBaseUrl(apiHost: string): string {
  return `${isLoopbackRegistry(apiHost) ? 'http' : 'https'}://${apiHost}`
}
