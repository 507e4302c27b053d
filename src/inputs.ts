// Every input of action.yml, read once into a typed, frozen object. Nothing else reads inputs.
// Names, defaults and env fallbacks (MLflow's own variables and mlflow-oidc-client's) come from
// action.yml through src/generated/action-inputs.ts; secrets are masked the moment they are read,
// before any validation can echo them.
import { existsSync, readFileSync } from 'node:fs'
import { InputError, errorMessage } from './util/errors.js'
import { parseDuration } from './util/duration.js'
import { isPlainObject, loadYaml } from './util/yaml.js'
import { MODEL_URI_FORMS, parseModelUri, type ModelRef } from './mlflow/model-uri.js'
import { deriveName, nameProblem, type Target } from './k8s/naming.js'
import type { EnvVar, Resources, ServingSettings } from './k8s/render.js'
import type { Attestations, BuildPolicy, ImageOptions, Runtime } from './image/index.js'
import { parseSigningKey, parseVerifier, type Signer, type Verifier } from './image/signing.js'
import type { GithubTokenMode, MlflowOptions, OidcOptions } from './mlflow/index.js'
import { parseIngressAddress } from './inference/route.js'
import { chooseModelCache, type ModelCacheMode } from './github/model-cache.js'
import { ACTION_INPUTS, type ActionInput, type DefaultedInput, type InputName } from './generated/action-inputs.js'

// The domain modules own their option types; where an input section is exactly one of them, it
// is that type (the pipeline hands it on as it is).
export type { BuildPolicy, GithubTokenMode, Runtime }
export type Action = 'deploy' | 'plan' | 'delete' | 'render' | 'cleanup'
export type Serving = 'image' | 'mlflow-runtime'

export interface MlflowInputs extends MlflowOptions {
  /** The server's --artifacts-destination, to map mlflow-artifacts:/ to a real storage location. */
  readonly artifactsDestination?: string
}
export type OidcInputs = OidcOptions
export type ImageInputs = ImageOptions

/** sign and verify-signature: how the deploy signs its image, and what signature it demands. */
export interface SigningInputs {
  readonly sign: Signer | undefined
  readonly verify: Verifier | undefined
}

export interface ClusterInputs extends ServingSettings {
  readonly target: Target
  readonly serving: Serving
  readonly name: string
  /** True when `name` was derived from the model rather than given. */
  readonly nameDerived: boolean
  readonly namespace: string
  readonly kubeContext: string | undefined
  /** Take over an existing object the action did not create. */
  readonly takeOver: boolean
  /** Kubeconfig from the input: its content, or a path. Undefined: KUBECONFIG, then in-cluster. */
  readonly kubeconfig: { readonly content: string } | { readonly path: string } | undefined
  readonly templatePath: string | undefined
  /** Secrets (dockerconfigjson) the pods pull the image with; deduplicated, in the order given. */
  readonly imagePullSecrets: readonly string[]
  /** The ServiceAccount the serving pods run as. */
  readonly serviceAccount: string | undefined
}

export interface FlowInputs {
  readonly wait: boolean
  /** One bound on wait + smoke test + rollback together. */
  readonly timeoutMs: number
  /** How long an Unschedulable pod is tolerated before the deploy fails. */
  readonly waitWindowMs: number
  readonly smokeTest: boolean
  readonly smokeTestInput: Readonly<Record<string, unknown>> | undefined
  readonly ingressHost: string | undefined
  /** Origin (scheme://host:port) of the ingress to send the smoke test to, with the URL's host as Host. */
  readonly ingressAddress: string | undefined
  readonly trafficPercent: number | undefined
  readonly tag: string | undefined
  readonly promoteAlias: string | undefined
}

export interface PreviewInputs {
  /** This run deploys (or deletes) a pull-request preview. */
  readonly enabled: boolean
  readonly prNumber: number | undefined
  readonly ttlMs: number | undefined
  /** For action cleanup: also delete previews created longer ago than this. */
  readonly cleanupOlderThanMs: number | undefined
}

export interface GithubInputs {
  readonly token: string | undefined
  readonly comment: boolean
  /** Deployment environment to report a status with the URL to. */
  readonly environment: string | undefined
}

export interface Inputs {
  readonly action: Action
  /** Undefined only for action cleanup, which sweeps previews without a model. */
  readonly model: { readonly uri: string; readonly ref: ModelRef } | undefined
  readonly mlflow: MlflowInputs
  readonly image: ImageInputs
  readonly signing: SigningInputs
  readonly cluster: ClusterInputs
  readonly flow: FlowInputs
  readonly preview: PreviewInputs
  readonly github: GithubInputs
  /** Where a downloaded model is kept for later builds (see chooseModelCache). */
  readonly modelCache: ModelCacheMode
}

/** Where raw values come from: action inputs (core.getInput) or, for the CLI, flags. */
export interface InputSource {
  /** The raw value of an input, '' when unset. */
  get(name: string): string
  /** Environment variables, for the documented fallbacks. */
  env: Readonly<Record<string, string | undefined>>
  /** Registers a secret with the log masker. */
  mask(secret: string): void
}

// ---------------------------------------------------------------------------------------------

export function parseInputs(source: InputSource): Inputs {
  const read = reader(source)

  const action = read.oneOf('action', ['deploy', 'plan', 'delete', 'render', 'cleanup'])
  const modelUri = read.text('model-uri')
  if (!modelUri && action !== 'cleanup') throw new InputError('model-uri', `required; use ${MODEL_URI_FORMS}`)
  const ref = modelUri ? parseModelUri(modelUri) : undefined
  if (typeof ref === 'string') throw new InputError('model-uri', ref)

  const mlflow = parseMlflow(read, action)
  const target = read.oneOf('target', ['knative', 'kserve'])
  const serving = read.oneOf('serving', ['image', 'mlflow-runtime'])
  const image = parseImage(read, action, serving)
  const signing = parseSigning(read, source, action, serving)
  const preview = parsePreview(read, action)
  const cluster = parseCluster(read, action, target, serving, ref, preview)
  const flow = parseFlow(read, action, target, ref)
  const github = parseGithub(read, preview)
  const modelCache = read.oneOf('model-cache', ['auto', 'github', 'runner', 'off'])
  if (action === 'deploy') {
    const choice = chooseModelCache(modelCache, source.env)
    if ('problem' in choice) throw new InputError('model-cache', choice.problem)
  }

  const model = ref && modelUri ? { uri: modelUri.trim(), ref } : undefined
  return deepFreeze({ action, model, mlflow, image, signing, cluster, flow, preview, github, modelCache })
}

function parsePreview(read: Reader, action: Action): PreviewInputs {
  const enabled = read.bool('preview')
  const ttlMs = read.duration('preview-ttl', 365 * 24 * 3_600_000)
  const cleanupOlderThanMs = read.duration('cleanup-older-than', 365 * 24 * 3_600_000)
  if (cleanupOlderThanMs !== undefined && action !== 'cleanup') {
    throw new InputError('cleanup-older-than', 'only applies to action: cleanup')
  }
  let prNumber: number | undefined
  if (enabled) {
    prNumber = read.int('pr-number', 1, Number.MAX_SAFE_INTEGER) ?? read.eventPrNumber()
    if (prNumber === undefined) {
      throw new InputError(
        'pr-number',
        'required for a preview outside a pull_request event (e.g. pr-number: ${{ github.event.number }})',
      )
    }
  } else if (read.text('pr-number')) {
    throw new InputError('pr-number', 'only applies with preview: true')
  }
  if (ttlMs !== undefined && !enabled) throw new InputError('preview-ttl', 'only applies with preview: true')
  return { enabled, prNumber, ttlMs, cleanupOlderThanMs }
}

function parseGithub(read: Reader, preview: PreviewInputs): GithubInputs {
  const token = read.secret('github-token')
  const comment = read.bool('comment')
  const given = read.text('environment')
  if (given && !/^[^\s'"`;,]{1,255}$/.test(given))
    throw new InputError('environment', `"${given}" is not a valid environment name`)
  const environment = given || (preview.enabled ? `preview-pr-${preview.prNumber}` : undefined)
  return { token, comment, environment }
}

function parseMlflow(read: Reader, action: Action): MlflowInputs {
  const trackingUri = read.url('tracking-uri')
  if (!trackingUri && (action === 'deploy' || action === 'plan' || action === 'render')) {
    throw new InputError(
      'tracking-uri',
      `required: the URL of your MLflow tracking server (or set ${ACTION_INPUTS['tracking-uri'].env})`,
    )
  }
  const registryUri = read.url('registry-uri')
  const token = read.secret('mlflow-token')
  const username = read.optional('mlflow-username')
  const password = read.secret('mlflow-password')
  const caCertPath = read.file('mlflow-ca-cert')
  const insecureTls = read.bool('mlflow-insecure-tls')

  if (username && !password) throw new InputError('mlflow-password', 'required with mlflow-username')
  if (password && !username) throw new InputError('mlflow-username', 'required with mlflow-password')
  if (token && username) {
    throw new InputError('mlflow-token', 'use either mlflow-token or mlflow-username/mlflow-password, not both')
  }
  if (caCertPath && insecureTls) {
    throw new InputError('mlflow-insecure-tls', 'cannot be true together with mlflow-ca-cert; trust the CA instead')
  }

  const oidc = parseOidc(read)
  if (oidc && (token || username)) {
    const which = token ? 'mlflow-token' : 'mlflow-username/mlflow-password'
    throw new InputError('oidc-issuer', `OIDC and ${which} are two ways to authenticate; use one`)
  }
  const artifactsDestination = read.text('artifacts-destination').replace(/\/+$/, '') || undefined
  if (artifactsDestination && !/^[a-z][a-z0-9+.-]*:\/\//.test(artifactsDestination)) {
    throw new InputError(
      'artifacts-destination',
      `"${artifactsDestination}" is not a storage URI such as s3://bucket/mlartifacts`,
    )
  }
  return { trackingUri, registryUri, token, username, password, caCertPath, insecureTls, oidc, artifactsDestination }
}

function parseOidc(read: Reader): OidcInputs | undefined {
  const issuer = read.url('oidc-issuer')
  const clientId = read.optional('oidc-client-id')
  const clientSecret = read.secret('oidc-client-secret')
  const scope = read.optional('oidc-scope')
  const audience = read.optional('oidc-audience')
  const githubToken = read.oneOf('oidc-github-token', ['none', 'bearer', 'token-exchange', 'client-assertion'])
  const githubAudience = read.optional('oidc-github-audience')

  if (githubToken === 'none' && !issuer && !clientId && !clientSecret) {
    for (const [input, value] of [
      ['oidc-scope', scope],
      ['oidc-audience', audience],
      ['oidc-github-audience', githubAudience],
    ]) {
      if (value) throw new InputError(input!, 'has no effect without oidc-issuer or oidc-github-token')
    }
    return undefined
  }
  if (githubToken === 'bearer') {
    if (issuer || clientId || clientSecret) {
      throw new InputError(
        'oidc-github-token',
        '`bearer` sends the GitHub token to MLflow as is; remove oidc-issuer/oidc-client-id/oidc-client-secret, or choose token-exchange or client-assertion',
      )
    }
  } else {
    if (!issuer) throw new InputError('oidc-issuer', `required for OIDC (or set ${ACTION_INPUTS['oidc-issuer'].env})`)
    if (!clientId && githubToken !== 'token-exchange') {
      throw new InputError(
        'oidc-client-id',
        `required with oidc-issuer (or set ${ACTION_INPUTS['oidc-client-id'].env})`,
      )
    }
    if (githubToken === 'none' && !clientSecret) {
      throw new InputError(
        'oidc-client-secret',
        "required for the client-credentials grant; or set oidc-github-token to use the job's GitHub OIDC token instead",
      )
    }
    if (githubToken === 'client-assertion' && clientSecret) {
      throw new InputError(
        'oidc-client-secret',
        'client-assertion authenticates with the GitHub token; remove the client secret',
      )
    }
  }
  return { issuer, clientId, clientSecret, scope, audience, githubToken, githubAudience }
}

// Repository: [registry[:port]/]path, lower case, no tag or digest (those are separate inputs).
const REPOSITORY =
  /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d+)?\/)?[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
const IMAGE_REF = /^[^\s@]+(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/

/**
 * The base each runtime builds on by default. kserve: plain Python, the template installs kserve
 * and mlflow-skinny on it (a base that has them skips that step). mlserver: Seldon's image.
 */
export const DEFAULT_BASE_IMAGES: Readonly<Record<Runtime, string>> = {
  kserve: 'docker.io/library/python:3.11-slim-bookworm',
  mlserver: 'docker.io/seldonio/mlserver:1.7.1',
}

function parseImage(read: Reader, action: Action, serving: Serving): ImageInputs {
  const repository = read.text('image-repository')
  const tag = read.text('image-tag')
  const runtime = read.oneOf('runtime', ['kserve', 'mlserver'])
  const baseImage = read.text('base-image') || DEFAULT_BASE_IMAGES[runtime]
  const build = read.oneOf('build', ['auto', 'always', 'never'])

  if (repository && !REPOSITORY.test(repository)) {
    const hint =
      /[:@][^/]*$/.test(repository) && !/:\d+\//.test(repository)
        ? '; put the tag in image-tag, not in the repository'
        : ''
    throw new InputError(
      'image-repository',
      `"${repository}" is not an image repository such as ghcr.io/acme/wine (lower case, no tag or digest)${hint}`,
    )
  }
  if (tag && !TAG.test(tag)) {
    throw new InputError(
      'image-tag',
      `"${tag}" is not a valid tag: letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'`,
    )
  }
  if (!IMAGE_REF.test(baseImage)) throw new InputError('base-image', `"${baseImage}" is not an image reference`)

  const platforms = read.list('platforms')
  for (const p of platforms) {
    if (!PLATFORM.test(p))
      throw new InputError('platforms', `"${p}" is not a platform such as linux/amd64 or linux/arm64/v8`)
  }
  const buildArgs = read.stringMap('build-args', { keyValueLines: true })
  const cacheFrom = read.lines('cache-from')
  const cacheTo = read.lines('cache-to')
  const network = read.text('build-network') || undefined
  const builder = read.text('builder') || undefined
  // buildx's own rule for instance names (letters, digits, '_', '.', '-').
  if (builder && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(builder))
    throw new InputError(
      'builder',
      `"${builder}" is not a buildx builder name such as builder-1a2b (letters, digits, '_', '.', '-')`,
    )
  const attestations = parseAttestations(read)
  const compression = read.oneOf('compression', ['gzip', 'zstd'])

  if (serving === 'mlflow-runtime') {
    const given = (
      [
        ['image-repository', repository],
        ['image-tag', tag],
        ['platforms', platforms.length],
        ['build-args', Object.keys(buildArgs).length],
        ['cache-from', cacheFrom.length],
        ['cache-to', cacheTo.length],
        ['build-network', network],
        ['builder', builder],
        ['sbom', attestations?.sbom],
        ['provenance', attestations?.provenance],
        // gzip is the default, which the runner passes whenever the workflow omits the input.
        ['compression', compression !== ACTION_INPUTS.compression.default],
      ] as const
    ).find(([, v]) => v)
    if (given)
      throw new InputError(given[0], 'has no effect with serving: mlflow-runtime, which builds no image; remove it')
    if (build === 'always')
      throw new InputError('build', '`always` conflicts with serving: mlflow-runtime, which builds no image')
  } else if (!repository && (action === 'deploy' || action === 'plan' || action === 'render')) {
    throw new InputError(
      'image-repository',
      'required to build or find the serving image, e.g. ghcr.io/acme/wine (or use serving: mlflow-runtime with target: kserve)',
    )
  }
  // On GitHub the runner passes runtime's default whenever the workflow omits it, so only a
  // runtime other than the default can be told apart from "not given".
  if (serving === 'mlflow-runtime' && runtime !== ACTION_INPUTS.runtime.default) {
    throw new InputError('runtime', 'has no effect with serving: mlflow-runtime, which builds no image; remove it')
  }
  return {
    runtime,
    repository: repository || undefined,
    tag: tag || undefined,
    baseImage,
    build,
    platforms,
    buildArgs,
    cacheFrom,
    cacheTo,
    network,
    builder,
    ...(attestations ? { attestations } : {}),
    compression,
  }
}

/** sbom and provenance: undefined when both are left to their defaults. */
function parseAttestations(read: Reader): Attestations | undefined {
  const sbomValue = read.text('sbom')
  let sbom: Attestations['sbom']
  if (/^true$/i.test(sbomValue)) sbom = true
  else if (sbomValue && !/^false$/i.test(sbomValue)) {
    // A comma would end the generator in buildx's --attest list (type=sbom,generator=…).
    if (!IMAGE_REF.test(sbomValue) || sbomValue.includes(','))
      throw new InputError(
        'sbom',
        `must be true, false, or an SBOM generator image such as docker/buildkit-syft-scanner:stable-1, got "${sbomValue}"`,
      )
    sbom = sbomValue
  }
  const provenanceValue = read.text('provenance')
  const provenance = PROVENANCE.find((p) => p === provenanceValue.toLowerCase())
  if (provenanceValue && !provenance)
    throw new InputError(
      'provenance',
      `must be ${orList(PROVENANCE)} (or empty: buildx's default), got "${provenanceValue}"`,
    )
  return sbom || provenance ? { ...(sbom ? { sbom } : {}), ...(provenance ? { provenance } : {}) } : undefined
}
const PROVENANCE = ['false', 'mode=min', 'mode=max'] as const

function parseSigning(read: Reader, source: InputSource, action: Action, serving: Serving): SigningInputs {
  const sign = read.bool('sign')
  const key = read.secret('signing-key')
  const verifyValue = read.text('verify-signature')
  // cosign's own variable for the key's password; masked like the key.
  const password = source.env['COSIGN_PASSWORD'] || undefined
  if (password) source.mask(password)
  // The runner masks a multi-line secret only whole: each line of the PEM too.
  for (const line of key?.split('\n') ?? []) if (line.trim() && !line.startsWith('-----')) source.mask(line.trim())
  if (key && !sign) throw new InputError('signing-key', 'only applies with sign: true')
  if (serving === 'mlflow-runtime') {
    const given = sign ? 'sign' : verifyValue ? 'verify-signature' : undefined
    if (given)
      throw new InputError(given, 'has no effect with serving: mlflow-runtime, which builds no image; remove it')
  }
  let signer: Signer | undefined
  if (key) {
    const parsed = parseSigningKey(key, existsSync)
    if ('problem' in parsed) throw new InputError('signing-key', parsed.problem)
    signer = { kind: 'key', key: parsed, password }
  } else if (sign) {
    // Keyless: cosign asks GitHub for the job's OIDC token, which only `id-token: write` provides.
    if (action === 'deploy' && !source.env['ACTIONS_ID_TOKEN_REQUEST_URL'])
      throw new InputError(
        'sign',
        "keyless signing needs the job's GitHub OIDC token: add `permissions: id-token: write` to the job, or give signing-key",
      )
    signer = { kind: 'keyless' }
  }
  let verify: Verifier | undefined
  if (verifyValue) {
    // A private key pasted here by mistake is a secret all the same.
    if (/PRIVATE KEY-----/.test(verifyValue)) source.mask(verifyValue)
    const parsed = parseVerifier(verifyValue, existsSync)
    if ('problem' in parsed) throw new InputError('verify-signature', parsed.problem)
    verify = parsed
  }
  return { sign: signer, verify }
}

function parseCluster(
  read: Reader,
  action: Action,
  target: Target,
  serving: Serving,
  ref: ModelRef | undefined,
  preview: PreviewInputs,
): ClusterInputs {
  if (serving === 'mlflow-runtime' && target !== 'kserve') {
    throw new InputError(
      'serving',
      "`mlflow-runtime` is KServe's MLflow runtime; use it with target: kserve, or use serving: image with knative",
    )
  }
  const given = read.text('name')
  const suffix = preview.enabled ? `-pr-${preview.prNumber}` : ''
  let name: string
  if (given) {
    name = given + suffix
    const problem = nameProblem(name, target)
    if (problem) throw new InputError('name', problem + (suffix ? ` (with the preview suffix ${suffix})` : ''))
  } else if (!ref) {
    name = '' // cleanup across all previews
  } else if ('name' in ref) {
    name = deriveName(ref.name, target, suffix)
  } else {
    throw new InputError(
      'name',
      `required when model-uri is ${ref.kind === 'run' ? 'a runs:/ URI' : 'a logged-model id'}: there is no registered model name to derive it from`,
    )
  }
  const namespace = read.text('namespace')
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63) {
    throw new InputError('namespace', `"${namespace}" is not a valid namespace (a DNS-1123 label)`)
  }
  const kubeContext = read.text('kube-context') || undefined
  const takeOver = read.bool('take-over')
  const kubeconfig = read.kubeconfig('kubeconfig')
  const templatePath = read.file('template')
  const env = read.envVars('env')
  const labels = read.stringMap('labels')
  for (const [k, v] of Object.entries(labels)) {
    if (!isQualifiedName(k)) throw new InputError('labels', `${JSON.stringify(k)} is not a valid label key`)
    if (!/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v) || v.length > 63) {
      throw new InputError(
        'labels',
        `value of ${JSON.stringify(k)} is ${JSON.stringify(v)}: label values are at most 63 characters: letters, digits, '-', '_' and '.', beginning and ending with a letter or digit`,
      )
    }
  }
  const annotations = read.stringMap('annotations')
  for (const k of Object.keys(annotations)) {
    if (!isQualifiedName(k)) throw new InputError('annotations', `${JSON.stringify(k)} is not a valid annotation key`)
  }
  const resources = read.resources('resources')
  const minScale = read.int('min-scale', 0, 10_000)
  const maxScale = read.int('max-scale', 1, 10_000)
  if (minScale !== undefined && maxScale !== undefined && minScale > maxScale) {
    throw new InputError('min-scale', `${minScale} is greater than max-scale ${maxScale}`)
  }
  const pods = parsePodIdentity(read, action)
  return {
    target,
    serving,
    name,
    nameDerived: !given,
    namespace,
    kubeContext,
    takeOver,
    kubeconfig,
    templatePath,
    env,
    labels,
    annotations,
    resources,
    minScale,
    maxScale,
    ...pods,
  }
}

const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
function objectNameProblem(name: string, kind: string): string | undefined {
  if (OBJECT_NAME.test(name) && name.length <= 253) return undefined
  const rule = `lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253`
  // Credentials pasted where a name belongs (a docker config, user:password) are not echoed.
  if (/[{}":@]/.test(name) || name.length > 253)
    return `takes the name of a ${kind} in the namespace, not its content (${rule})`
  return `"${name}" is not a ${kind} name: ${rule}`
}

/**
 * Pull secrets and service account: validated always, kept only where a manifest is rendered
 * (a delete or cleanup sharing the deploy's inputs ignores them).
 */
function parsePodIdentity(read: Reader, action: Action): Pick<ClusterInputs, 'imagePullSecrets' | 'serviceAccount'> {
  const secrets = [...new Set(read.list('image-pull-secrets'))]
  for (const name of secrets) {
    const problem = objectNameProblem(name, 'Secret')
    if (problem)
      throw new InputError('image-pull-secrets', `${problem}; list Secret names, comma- or newline-separated`)
  }
  const account = read.text('service-account') || undefined
  const problem = account && objectNameProblem(account, 'ServiceAccount')
  if (problem) throw new InputError('service-account', problem)
  const renders = action === 'deploy' || action === 'plan' || action === 'render'
  return renders
    ? { imagePullSecrets: secrets, serviceAccount: account }
    : { imagePullSecrets: [], serviceAccount: undefined }
}

function parseFlow(read: Reader, action: Action, target: Target, ref: ModelRef | undefined): FlowInputs {
  const wait = read.bool('wait')
  const timeoutMs = read.duration('timeout')
  // Longer than what is left of timeout, it simply never ends the wait: the timeout does.
  const waitWindowMs = read.duration('wait-window')
  const smokeTest = read.bool('smoke-test')
  const smokeTestInput = read.json('smoke-test-input')
  if (smokeTestInput && !Array.isArray(smokeTestInput['inputs'])) {
    throw new InputError(
      'smoke-test-input',
      'must be a V2 inference request: {"inputs": [{"name": …, "shape": […], "datatype": …, "data": […]}]}',
    )
  }
  const ingressHost = read.text('ingress-host') || undefined
  if (ingressHost && !/^[A-Za-z0-9.-]+(:\d+)?$/.test(ingressHost)) {
    throw new InputError('ingress-host', `"${ingressHost}" is not a host name`)
  }
  const ingressAddressInput = read.text('ingress-address') || undefined
  let ingressAddress: string | undefined
  if (ingressAddressInput) {
    const parsed = parseIngressAddress(ingressAddressInput)
    if ('error' in parsed) throw new InputError('ingress-address', parsed.error)
    ingressAddress = parsed.origin
  }
  const trafficPercent = read.int('traffic-percent', 0, 100)
  const tag = read.text('tag') || undefined
  if (tag && (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(tag) || tag.length > 40)) {
    throw new InputError(
      'tag',
      `"${tag}" is not a valid traffic tag: lower-case letters, digits and '-', starting with a letter, at most 40`,
    )
  }
  if (tag && target === 'kserve') {
    throw new InputError('tag', 'traffic tags are Knative-only; for KServe use traffic-percent (canaryTrafficPercent)')
  }
  const promoteAlias = read.text('promote-alias') || undefined
  if (promoteAlias) {
    if (!/^[\w-]{1,255}$/.test(promoteAlias) || /^(latest|v\d+)$/i.test(promoteAlias)) {
      throw new InputError(
        'promote-alias',
        `"${promoteAlias}" is not a valid MLflow alias: letters, digits, '_' and '-'; 'latest' and v<number> are reserved`,
      )
    }
    if (!ref || !('name' in ref))
      throw new InputError(
        'promote-alias',
        'needs a registered model (models:/<name>/…); runs:/ and logged-model URIs have no aliases',
      )
    if (action !== 'deploy' && action !== 'plan') {
      throw new InputError('promote-alias', `only applies to action: deploy (or plan), not ${action}`)
    }
    // An alias says "this version serves": it may only move after the version was seen serving.
    if (!wait || !smokeTest) {
      throw new InputError(
        'promote-alias',
        `needs wait: true and smoke-test: true (got wait: ${wait}, smoke-test: ${smokeTest}): an alias moves only to a version verified serving`,
      )
    }
  }
  if (smokeTest && !wait && (action === 'deploy' || action === 'plan')) {
    throw new InputError(
      'smoke-test',
      'needs wait: true (the endpoint must be Ready first); set smoke-test: false to skip it',
    )
  }
  return {
    wait,
    timeoutMs,
    waitWindowMs,
    smokeTest,
    smokeTestInput,
    ingressHost,
    ingressAddress,
    trafficPercent,
    tag,
    promoteAlias,
  }
}

// --- the reader: one typed accessor per kind of input ----------------------------------------

type Reader = ReturnType<typeof reader>

function reader(source: InputSource) {
  /**
   * The input's value, else its env fallback's, else its default, trimmed; '' when none is set.
   * Names, defaults and fallbacks are action.yml's (src/generated/action-inputs.ts): the runner
   * passes defaults as INPUT_<NAME> itself, the CLI and tests do not, and both get the same.
   */
  const text = (name: InputName): string => {
    const meta: ActionInput = ACTION_INPUTS[name]
    const value = source.get(name).trim() || (meta.env ? (source.env[meta.env] ?? '').trim() : '')
    return value || (meta.default ?? '')
  }

  function duration(name: DefaultedInput, maxMs?: number): number
  function duration(name: InputName, maxMs?: number): number | undefined
  function duration(name: InputName, maxMs = 6 * 3_600_000): number | undefined {
    const value = text(name)
    if (!value) return undefined
    const ms = parseDuration(value)
    if (ms === undefined) throw new InputError(name, `"${value}" is not a duration; use e.g. 90s, 10m or 1h30m`)
    if (ms <= 0 || ms > maxMs) {
      throw new InputError(name, `must be between 1s and ${Math.round(maxMs / 3_600_000)}h, got "${value}"`)
    }
    return ms
  }

  return {
    text,
    /** An optional text input: undefined when unset, so `??` defaults apply downstream. */
    optional: (name: InputName): string | undefined => text(name) || undefined,
    secret(name: InputName): string | undefined {
      const value = text(name)
      if (value) source.mask(value)
      return value || undefined
    },
    oneOf<T extends string>(name: DefaultedInput, allowed: readonly T[]): T {
      const value = text(name)
      const match = allowed.find((a) => a === value.toLowerCase())
      if (!match) throw new InputError(name, `must be ${orList(allowed)}, got "${value}"`)
      return match
    },
    /** Unset is false (mlflow-insecure-tls, the one flag without a default, has an env fallback). */
    bool(name: InputName): boolean {
      const value = text(name)
      if (!value) return false
      if (/^(true|1)$/i.test(value)) return true
      if (/^(false|0)$/i.test(value)) return false
      throw new InputError(name, `must be true or false, got "${value}"`)
    },
    int(name: InputName, min: number, max: number): number | undefined {
      const value = text(name)
      if (!value) return undefined
      if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
        throw new InputError(name, `must be a whole number from ${min} to ${max}, got "${value}"`)
      }
      return Number(value)
    },
    duration,
    /** The pull request's number from the event payload (pull_request, pull_request_target). */
    eventPrNumber(): number | undefined {
      const path = source.env['GITHUB_EVENT_PATH']
      if (!path || !existsSync(path)) return undefined
      try {
        const event = JSON.parse(readFileSync(path, 'utf8')) as {
          pull_request?: { number?: unknown }
          number?: unknown
        }
        const n = event.pull_request?.number ?? event.number
        return typeof n === 'number' ? n : undefined
      } catch {
        return undefined
      }
    },
    url(name: InputName): string | undefined {
      const value = text(name)
      if (!value) return undefined
      let url: URL
      try {
        url = new URL(value)
      } catch {
        throw new InputError(name, `"${value}" is not a URL; use e.g. https://mlflow.example.com`)
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new InputError(
          name,
          `"${value}" uses ${url.protocol}; only http:// and https:// servers are supported (file and database stores are not reachable from a deploy)`,
        )
      }
      if (url.username || url.password) {
        source.mask(decodeURIComponent(url.password))
        throw new InputError(
          name,
          'must not carry credentials in the URL; use mlflow-username/mlflow-password or mlflow-token',
        )
      }
      return value.replace(/\/+$/, '')
    },
    file(name: InputName): string | undefined {
      const value = text(name)
      if (!value) return undefined
      if (!existsSync(value)) throw new InputError(name, `file "${value}" does not exist`)
      return value
    },
    list(name: InputName): string[] {
      return text(name)
        .split(/[,\n]/)
        .map((s) => s.trim())
        .filter(Boolean)
    },
    lines(name: InputName): string[] {
      return text(name)
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean)
    },
    json(name: InputName): Record<string, unknown> | undefined {
      const value = text(name)
      if (!value) return undefined
      let parsed: unknown
      try {
        parsed = JSON.parse(value)
      } catch (err) {
        throw new InputError(name, `is not valid JSON: ${errorMessage(err)}`)
      }
      if (!isPlainObject(parsed)) throw new InputError(name, 'must be a JSON object')
      return parsed
    },
    /** A YAML map of strings (numbers and booleans become strings, as Kubernetes needs). */
    stringMap(name: InputName, opts: { keyValueLines?: boolean } = {}): Record<string, string> {
      const value = text(name)
      if (!value) return {}
      if (opts.keyValueLines && /^[^\s:=]+=/.test(value)) {
        return Object.fromEntries(
          value
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean)
            .map((line) => {
              const eq = line.indexOf('=')
              if (eq <= 0) throw new InputError(name, `line "${line}" is not KEY=VALUE`)
              return [line.slice(0, eq), line.slice(eq + 1)]
            }),
        )
      }
      const parsed = parseYaml(name, value)
      if (!isPlainObject(parsed)) throw new InputError(name, 'must be a YAML map, e.g. "key: value" on each line')
      return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, scalar(name, k, v)]))
    },
    envVars(name: InputName): EnvVar[] {
      const value = text(name)
      if (!value) return []
      const parsed = parseYaml(name, value)
      const vars: EnvVar[] = Array.isArray(parsed)
        ? parsed.map((item, i) => {
            if (!isPlainObject(item) || typeof item['name'] !== 'string') {
              throw new InputError(name, `item ${i + 1} must be an EnvVar with a name and a value or valueFrom`)
            }
            if (isPlainObject(item['valueFrom'])) return { name: item['name'], valueFrom: item['valueFrom'] }
            return { name: item['name'], value: scalar(name, item['name'], item['value'] ?? '') }
          })
        : isPlainObject(parsed)
          ? Object.entries(parsed).map(([k, v]) => ({ name: k, value: scalar(name, k, v) }))
          : fail(name, 'must be a YAML map (NAME: value) or a list of EnvVar objects')
      for (const v of vars) {
        if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(v.name))
          throw new InputError(name, `"${v.name}" is not a valid environment variable name`)
      }
      return vars
    },
    resources(name: InputName): Resources | undefined {
      const value = text(name)
      if (!value) return undefined
      const parsed = parseYaml(name, value)
      if (!isPlainObject(parsed)) throw new InputError(name, 'must be a YAML map with requests and/or limits')
      const out: Record<string, Record<string, string> | undefined> = { requests: undefined, limits: undefined }
      for (const [section, body] of Object.entries(parsed)) {
        if (section !== 'requests' && section !== 'limits') {
          throw new InputError(
            name,
            `unknown key "${section}"; use requests and limits, e.g. {requests: {cpu: '1', memory: 2Gi}}`,
          )
        }
        if (!isPlainObject(body)) throw new InputError(name, `${section} must be a map of resource: quantity`)
        out[section] = Object.fromEntries(
          Object.entries(body).map(([res, q]) => {
            const quantity = scalar(name, `${section}.${res}`, q)
            if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i?|[mun]|k)?$/.test(quantity)) {
              throw new InputError(
                name,
                `${section}.${res}: "${quantity}" is not a Kubernetes quantity such as 500m, 1, 2Gi`,
              )
            }
            return [res, quantity]
          }),
        )
      }
      return out as Resources
    },
    kubeconfig(name: InputName): ClusterInputs['kubeconfig'] {
      const value = text(name)
      if (!value) return undefined
      if (value.includes('\n') || /^\s*(apiVersion|kind|clusters)\s*:/.test(value)) {
        maskKubeconfig(value, source.mask)
        const parsed = safeYaml(value)
        if (!isPlainObject(parsed) || !Array.isArray(parsed['clusters'])) {
          throw new InputError(name, 'is neither a path nor kubeconfig YAML with clusters, users and contexts')
        }
        return { content: value }
      }
      if (!existsSync(value))
        throw new InputError(name, `file "${value}" does not exist (pass the kubeconfig content or a path to it)`)
      return { path: value }
    },
  }
}

/** Masks the whole kubeconfig and, line by line, its credentials (the runner masks line-wise). */
function maskKubeconfig(content: string, mask: (s: string) => void): void {
  mask(content)
  const doc = safeYaml(content)
  if (!isPlainObject(doc) || !Array.isArray(doc['users'])) return
  for (const entry of doc['users']) {
    const user = isPlainObject(entry) && isPlainObject(entry['user']) ? entry['user'] : {}
    for (const key of ['token', 'password', 'client-key-data']) {
      if (typeof user[key] === 'string' && user[key]) mask(user[key])
    }
  }
}

function safeYaml(text: string): unknown {
  try {
    return loadYaml(text)
  } catch {
    return undefined
  }
}

function parseYaml(name: string, value: string): unknown {
  try {
    return loadYaml(value)
  } catch (err) {
    // js-yaml's first line says what and where; the rest echoes the input, which may hold secrets.
    throw new InputError(name, `is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
}

function scalar(name: string, key: string, value: unknown): string {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  throw new InputError(name, `value of "${key}" must be a string, number or boolean`)
}

function fail(name: string, message: string): never {
  throw new InputError(name, message)
}

function isQualifiedName(key: string): boolean {
  // At most one '/': split('/', 2) would quietly drop the rest of `a/b/c`.
  const parts = key.split('/')
  if (parts.length > 2) return false
  const [prefix, local] = parts.length === 2 ? (parts as [string, string]) : [undefined, key]
  if (prefix !== undefined && (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(prefix) || prefix.length > 253)) return false
  return /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/.test(local) && local.length <= 63
}

function orList(values: readonly string[]): string {
  const quoted = values.map((v) => `\`${v}\``)
  return quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
