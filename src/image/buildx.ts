// docker buildx: build the context and push it, reading the pushed digest from --metadata-file.
// Works with the `docker` driver (a plain runner's default), which builds one platform and keeps
// its layer cache in the daemon, and with a BuildKit of its own (docker-container or remote, what
// docker/setup-buildx-action sets up), which pushes an OCI index holding the image and its
// provenance attestation and exports registry caches. The same arguments go to both.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DeployError } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { Exec } from './exec.js'
import { missingPlatforms } from './identity.js'

export interface BuildxBuildOptions {
  readonly context: string
  readonly dockerfile: string
  readonly tags: readonly string[]
  readonly metadataFile: string
  readonly push: boolean
  readonly platforms: readonly string[]
  readonly buildArgs: Readonly<Record<string, string>>
  readonly labels: Readonly<Record<string, string>>
  readonly cacheFrom: readonly string[]
  readonly cacheTo: readonly string[]
  /** RUN steps' network, e.g. `host` where the daemon has no bridge (this rig). */
  readonly network?: string
  readonly builder?: string
  /** Ignore the layer cache (benchmarks of a cold build). */
  readonly noCache?: boolean
  readonly attestations?: Attestations
  /** How the layers this build creates are compressed for the push; undefined: buildx's default, gzip. */
  readonly compression?: Compression
  /** Push by digest only, untagged, to this registry/repository (`tags` are then not pushed). */
  readonly pushByDigest?: string
}

/**
 * zstd compresses several times faster than gzip and unpacks faster on the node; gzip is what every
 * runtime can pull (containerd < 1.5 and Docker Engine < 23 cannot unpack zstd).
 */
export type Compression = 'gzip' | 'zstd'

/** SBOM and provenance attestations asked of BuildKit (https://docs.docker.com/build/metadata/attestations/). */
export interface Attestations {
  /** An SBOM: true with BuildKit's default generator, a string with that generator image. */
  readonly sbom?: true | string
  /** --provenance; undefined: buildx's default (mode=min on a BuildKit builder, none on the docker driver). */
  readonly provenance?: 'false' | 'mode=min' | 'mode=max'
}

/** The argument list after `docker`. Pure; keys are sorted so the command reads the same each run. */
export function buildxArgs(o: BuildxBuildOptions): string[] {
  const args = ['buildx', 'build', '--progress', 'plain']
  if (o.builder) args.push('--builder', o.builder)
  args.push('--file', o.dockerfile)
  if (o.platforms.length) args.push('--platform', o.platforms.join(','))
  for (const k of Object.keys(o.buildArgs).sort()) args.push('--build-arg', `${k}=${o.buildArgs[k]}`)
  for (const k of Object.keys(o.labels).sort()) args.push('--label', `${k}=${o.labels[k]}`)
  for (const c of o.cacheFrom) args.push('--cache-from', c)
  for (const c of o.cacheTo) args.push('--cache-to', c)
  if (o.network) args.push('--network', o.network)
  const att = o.attestations
  if (att?.sbom === true) args.push('--sbom=true')
  else if (att?.sbom) args.push('--attest', `type=sbom,generator=${att.sbom}`)
  if (att?.provenance) args.push(`--provenance=${att.provenance}`)
  if (o.noCache) args.push('--no-cache')
  args.push('--metadata-file', o.metadataFile)
  // --push is --output type=registry; compression needs the long form. BuildKit compresses only the
  // layers this build creates (the base's keep theirs); zstd needs OCI media types.
  const zstd = o.compression === 'zstd' ? ',compression=zstd,oci-mediatypes=true' : ''
  if (o.push && o.pushByDigest) args.push('--output', `type=registry,name=${o.pushByDigest},push-by-digest=true${zstd}`)
  else if (o.push && zstd) args.push('--output', `type=registry${zstd}`)
  else if (o.push) args.push('--push')
  if (!o.pushByDigest) for (const t of o.tags) args.push('--tag', t)
  args.push(o.context)
  return args
}

/**
 * Why a push asked for zstd holds no zstd layer, in one line with the fix; undefined when it holds
 * one (or zstd was not asked). Two causes, both seen on the rig: the docker driver with Docker's
 * classic image store pushes gzip whatever it is asked, and BuildKit pushes the gzip blob of a layer
 * it had already exported with gzip. Pure, for the tests' tables.
 */
export function compressionProblem(
  asked: Compression | undefined,
  ref: string,
  layerMediaTypes: readonly string[],
): string | undefined {
  if (asked !== 'zstd' || layerMediaTypes.some((t) => /[+.]zstd$/.test(t))) return undefined
  return (
    `compression: zstd was asked, but ${ref} was pushed with gzip layers only: the docker driver with Docker's classic image store compresses with gzip whatever it is asked, ` +
    'and a BuildKit builder reuses the gzip blobs of layers it exported before. Use a BuildKit builder (docker/setup-buildx-action, then its name in the builder input); its new layers are zstd'
  )
}

/** The image digest buildx recorded (`containerimage.digest`). */
export function digestFromMetadata(text: string): string | undefined {
  try {
    const meta = JSON.parse(text) as Record<string, unknown>
    const d = meta['containerimage.digest']
    return typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d) ? d : undefined
  } catch {
    return undefined
  }
}

/**
 * What the commands of the build step whose header mentions `marker` printed, without BuildKit's
 * `#<step> <seconds> ` prefixes. Lines without a time are BuildKit's own (headers, DONE, ERROR).
 */
export function stepOutput(log: string, marker: string): string[] {
  const lines = log.split('\n')
  const ids = new Set<string>()
  for (const l of lines) {
    const m = /^#(\d+) \[[^\]]*\] /.exec(l)
    if (m && l.includes(marker)) ids.add(m[1]!)
  }
  const out: string[] = []
  for (const l of lines) {
    const m = /^#(\d+) \d+\.\d+ (.*)$/.exec(l)
    if (m && ids.has(m[1]!)) out.push(m[2]!)
  }
  return out
}

/** What `docker buildx inspect` says of a builder: its driver and the platforms its nodes run. */
export interface BuilderInfo {
  readonly name?: string
  readonly driver?: string
  /** Every node's platforms; empty when the builder has not booted yet. */
  readonly platforms: readonly string[]
}

/** Parses `docker buildx inspect` (the text form: `Driver:`, then one `Platforms:` line per node). */
export function parseBuildxInspect(text: string): BuilderInfo {
  const field = (name: string) => [...text.matchAll(new RegExp(`^${name}:[ \t]*(.*)$`, 'gm'))].map((m) => m[1]!.trim())
  const platforms = field('Platforms')
    .flatMap((l) => l.split(','))
    // `linux/arm64*`: the star marks platforms the user configured for the node.
    .map((p) => p.trim().replace(/\*$/, ''))
    .filter(Boolean)
  return { name: field('Name')[0], driver: field('Driver')[0], platforms: [...new Set(platforms)] }
}

/**
 * Why this builder cannot build `platforms`, in one line with the fix; undefined when it can (or
 * when it has not booted and lists none: the build then says). Pure, for the tests' tables.
 */
export function builderPlatformProblem(info: BuilderInfo, platforms: readonly string[]): string | undefined {
  const name = info.name ? `builder "${info.name}"` : 'the current builder'
  if (info.driver === 'docker' && platforms.length > 1)
    return (
      `platforms asks for ${platforms.join(', ')}, but ${name} uses the docker driver, which builds one platform only: ` +
      'set up a BuildKit builder with docker/setup-qemu-action and docker/setup-buildx-action and name it in the builder input, or build one platform'
    )
  const missing = info.platforms.length ? missingPlatforms(platforms, info.platforms) : []
  if (missing.length)
    return (
      `${name} cannot build ${missing.join(', ')} (it runs ${info.platforms.join(', ')}): ` +
      'register QEMU with docker/setup-qemu-action before docker/setup-buildx-action (or use a builder with native nodes for those platforms)'
    )
  return undefined
}

function quote(arg: string): string {
  return /^[\w./:=@,+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`
}

function lastLines(lines: readonly string[], n: number): string {
  return lines
    .map((l) => l.trimEnd())
    .filter(Boolean)
    .slice(-n)
    .join('\n')
}

export interface BuildFailureContext {
  readonly baseImage: string
  readonly tags: readonly string[]
  readonly dockerHost: string | undefined
  readonly attestations?: Attestations
}

/**
 * Turns a failed `docker buildx build` into one message that says what went wrong and what to do.
 * Pure, so each fault is a table row in the tests.
 */
export function explainBuildFailure(exitCode: number, log: string, ctx: BuildFailureContext): string {
  const tail = lastLines(log.split('\n'), 1)
  if (exitCode === 127 || /unable to locate executable/i.test(log))
    return 'the docker CLI was not found on PATH: this step needs Docker with the buildx plugin (GitHub ubuntu runners have both)'
  // Without the plugin, docker reads `buildx build --progress …` as its own flags: "unknown flag".
  if (
    /unknown command:? "?docker buildx|is not a docker command|unknown command "buildx"/i.test(log) ||
    (/unknown flag: --/.test(log) && /Usage:\s+docker \[OPTIONS\] COMMAND/.test(log))
  )
    return 'docker buildx is not installed: add docker/setup-buildx-action before this step, or install the docker-buildx package (the buildx CLI plugin)'
  if (/Cannot connect to the Docker daemon|error during connect|docker daemon is not running/i.test(log))
    return `the Docker daemon is not running or not reachable${ctx.dockerHost ? ` at DOCKER_HOST=${ctx.dockerHost}` : ''}: ${tail}`
  if (/exec format error/i.test(log))
    return `a RUN step for another platform could not start (exec format error): register QEMU with docker/setup-qemu-action before docker/setup-buildx-action (${tail})`
  if (/network bridge not found/i.test(log))
    return 'the Docker daemon has no bridge network for RUN steps (dockerd --bridge=none): build with network "host"'
  if (
    /failed to create LLB definition|load metadata for/i.test(log) &&
    /not found|manifest unknown|pull access denied|unauthorized|denied/i.test(tail)
  )
    return `the base image ${ctx.baseImage} could not be pulled: it does not exist, or the registry needs credentials (${tail})`
  const failed =
    /(?:executor failed running|process) "?\[?(.*?)(?:\]:|" did not complete successfully)/.exec(tail)?.[1] ?? ''
  // The install step: `install.sh -r …requirements.txt` (uv or pip), `pip install` in older templates.
  const marker = ['install.sh -r', 'pip install'].find((m) => failed.includes(m))
  if (marker) {
    const pip = stepOutput(log, marker)
    const errors = pip.filter(
      (l) => !/^(Collecting|Downloading|Requirement already satisfied|Using cached|Obtaining)\b/.test(l),
    )
    const tool = pip.some((l) => /^(×|\s*╰─▶|error: |Resolved \d+ packages)/.test(l)) ? 'uv' : 'pip'
    return `the model's requirements failed to install. The end of ${tool}'s output:\n${lastLines(errors.length ? errors : pip, 12)}`
  }
  // BuildKit asks token services with OAuth2's password grant first and falls back to a plain GET
  // only on 401, 404 or 405 (containerd's docker resolver); a service answering 400 ends the push.
  const oauth = /failed to fetch oauth token: unexpected status from POST request to (\S+?):? 400\b/i.exec(log)
  if (oauth)
    return `pushing ${ctx.tags.join(', ')} failed: the registry's token service (${oauth[1]}) refused BuildKit's OAuth2 password grant with HTTP 400, and BuildKit does not then retry with a plain token request. Log in so the Docker config holds an identity token (a refresh token the service issued), or push with the docker driver (leave builder empty) (${tail})`
  if (
    /no basic auth credentials|failed to push|push access denied|insufficient_scope|unauthorized|authentication required|denied:/i.test(
      log,
    )
  )
    return `pushing ${ctx.tags.join(', ')} was refused: log in to the registry with push rights first, e.g. with docker/login-action (${tail})`
  const noBuilder = /no builder "([^"]*)" found/i.exec(log)
  if (noBuilder)
    return `there is no buildx builder named "${noBuilder[1]}" in this Docker config: set the builder input to the name docker/setup-buildx-action printed (its \`name\` output), or leave it empty for the current builder`
  if (/cache export is not supported for the docker driver|cache export feature is currently not supported/i.test(log))
    return `the docker driver cannot export a build cache (cache-to): use a BuildKit builder (docker/setup-buildx-action, then its name in the builder input), or remove cache-to (${tail})`
  if (/network\.host is not allowed|granting entitlement network\.host is not allowed/i.test(log))
    return "the builder does not allow RUN steps on the host network (build-network: host): start its BuildKit with --allow-insecure-entitlement network.host (setup-buildx-action's default buildkitd-flags do), or leave build-network empty"
  // buildx refuses at once, before any step: the docker driver's image store (unless it is
  // containerd's) has no place for attestation manifests.
  if (/Attestation is not supported for the docker driver/i.test(log))
    return `${attestationInputs(ctx.attestations)}: the docker driver cannot attach SBOM or provenance attestations: use a BuildKit builder (docker/setup-buildx-action, then its name in the builder input) or Docker's containerd image store`
  if (/multiple platforms feature is currently not supported/i.test(log))
    return `the docker driver builds one platform only: for several platforms use a docker-container builder (docker/setup-buildx-action) (${tail})`
  return `docker buildx build failed with exit code ${exitCode}: ${tail}`
}

/** The inputs that asked for attestations, as the user wrote them. */
function attestationInputs(a: Attestations | undefined): string {
  const named = [a?.sbom && `sbom: ${a.sbom}`, a?.provenance && `provenance: ${a.provenance}`].filter(Boolean)
  return named.length ? named.join(' and ') : 'attestations'
}

export interface BuildxOptions {
  readonly exec: Exec
  readonly log: Logger
  /** Environment for every docker call: DOCKER_HOST, DOCKER_CONFIG, … */
  readonly env?: Readonly<Record<string, string>>
  /** The docker CLI, default `docker` from PATH. */
  readonly docker?: string
}

export interface BuildxResult {
  readonly digest: string
  readonly seconds: number
}

export class Buildx {
  private readonly inspected = new Map<string, BuilderInfo>()

  constructor(private readonly options: BuildxOptions) {}

  /** Builds and pushes; returns the pushed image's digest. */
  async build(
    o: Omit<BuildxBuildOptions, 'metadataFile' | 'push'> & { readonly baseImage: string },
  ): Promise<BuildxResult> {
    // Before the build: a builder that cannot make every platform fails in one line, not minutes in.
    if (o.platforms.length) await this.checkPlatforms(o.builder, o.platforms)
    const dir = await mkdtemp(join(tmpdir(), 'mlflow-k8s-deploy-buildx-'))
    try {
      const metadataFile = join(dir, 'metadata.json')
      const args = buildxArgs({ ...o, metadataFile, push: true })
      // The labels repeat the identity: the full command goes to debug, a short form to the log.
      const push = o.pushByDigest
        ? `--output type=registry,name=${o.pushByDigest},push-by-digest=true`
        : `${o.compression === 'zstd' ? '--output type=registry,compression=zstd' : '--push'} --tag ${o.tags.join(' --tag ')}`
      this.options.log.info(`docker buildx build ${push} ${o.context}`)
      this.options.log.debug(`docker ${args.map(quote).join(' ')}`)
      const started = performance.now()
      // The whole build log, in the stage's collapsed group: the evidence of a failure stays there.
      const res = await this.docker(args, (l) => this.options.log.info(l))
      const seconds = (performance.now() - started) / 1000
      if (res.exitCode !== 0)
        throw new DeployError(
          explainBuildFailure(res.exitCode, `${res.stdout}\n${res.stderr}`, {
            ...this.failureContext(o.baseImage, o.tags),
            attestations: o.attestations,
          }),
        )
      const digest = digestFromMetadata(await readFile(metadataFile, 'utf8').catch(() => ''))
      if (!digest)
        throw new DeployError(
          'docker buildx build succeeded but wrote no containerimage.digest to its metadata file (buildx ≥ 0.6 is needed)',
        )
      return { digest, seconds }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  /** The builder's driver (docker, docker-container, remote, …); undefined when inspect fails. */
  async driver(builder: string | undefined): Promise<string | undefined> {
    return (await this.inspect(builder))?.driver
  }

  /** Fails when the builder cannot build these platforms; an inspect that fails is left to the build to explain. */
  async checkPlatforms(builder: string | undefined, platforms: readonly string[]): Promise<void> {
    const info = await this.inspect(builder)
    const problem = info && builderPlatformProblem(info, platforms)
    if (problem) throw new DeployError(problem)
  }

  /**
   * `docker buildx inspect [builder]`, parsed; undefined when it fails. Once per builder: an SBOM
   * build asks for the driver and then checks platforms before each of its two builds, and a
   * remote builder answers in about 0.2 s. A failed inspect is asked again.
   */
  private async inspect(builder: string | undefined): Promise<BuilderInfo | undefined> {
    const known = this.inspected.get(builder ?? '')
    if (known) return known
    const res = await this.docker(['buildx', 'inspect', ...(builder ? [builder] : [])])
    if (res.exitCode !== 0) return undefined
    const info = parseBuildxInspect(res.stdout)
    this.inspected.set(builder ?? '', info)
    return info
  }

  private docker(args: string[], onLine?: (line: string) => void) {
    return this.options.exec(this.options.docker ?? 'docker', args, { env: this.options.env, onLine })
  }

  private failureContext(baseImage: string, tags: readonly string[]): BuildFailureContext {
    return { baseImage, tags, dockerHost: this.options.env?.DOCKER_HOST ?? process.env.DOCKER_HOST }
  }
}
