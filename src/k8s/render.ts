// Manifests for the three deployment shapes, built as objects (never by pasting text into YAML):
// a Knative Service running the serving image, a KServe InferenceService with a custom container,
// and a KServe InferenceService on the MLflow runtime (storageUri, no image).
import { createHash } from 'node:crypto'
import { DeployError } from '../util/errors.js'
import { isPlainObject, loadYaml } from '../util/yaml.js'
import { MODEL_NAME_VARIABLE, SERVING_PORT, modelReadyPath } from '../contract/serving.js'
import type { Target } from './naming.js'

export const MANAGED_BY = 'mlflow-k8s-deploy'
export const ANNOTATION_PREFIX = 'mlflow-k8s-deploy'

/** A Kubernetes EnvVar: a plain value or a valueFrom reference (secrets, config maps). */
export type EnvVar = { name: string; value: string } | { name: string; valueFrom: Record<string, unknown> }
/** A container's resource requests and limits (quantities as Kubernetes writes them). */
export type Resources = Readonly<Record<'requests' | 'limits', Readonly<Record<string, string>> | undefined>>

/** Preview objects: the labels the cleanup sweep selects on, the annotations it reads. */
export const PREVIEW_LABEL = `${ANNOTATION_PREFIX}/preview`
export const PR_LABEL = `${ANNOTATION_PREFIX}/pr`
export const REPOSITORY_LABEL = `${ANNOTATION_PREFIX}/repository`
export const REPOSITORY_ANNOTATION = `${ANNOTATION_PREFIX}/repository`
export const EXPIRES_ANNOTATION = `${ANNOTATION_PREFIX}/expires-at`

export interface PreviewMeta {
  readonly pr: number
  /** owner/repo; undefined outside GitHub Actions (then the sweep cannot select the object). */
  readonly repository: string | undefined
  /** RFC 3339 expiry, from preview-ttl. */
  readonly expiresAt: string | undefined
}

/**
 * owner/repo as a label value (≤ 63 chars of [a-z0-9._-], alphanumeric at both ends). Owners hold
 * no dots, so owner.repo is unambiguous; a name that does not fit is shortened and hashed.
 */
export function repositoryLabel(repository: string): string {
  const plain = repository.toLowerCase().replace('/', '.')
  if (/^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/.test(plain)) return plain
  const hash = createHash('sha256').update(plain).digest('hex').slice(0, 10)
  const head = plain
    .replace(/[^a-z0-9._-]/g, '-')
    .slice(0, 52)
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
  return head ? `${head}-${hash}` : hash
}

function previewMetadata(p: PreviewMeta): { labels: Record<string, string>; annotations: Record<string, string> } {
  return {
    labels: {
      [PREVIEW_LABEL]: 'true',
      [PR_LABEL]: String(p.pr),
      ...(p.repository ? { [REPOSITORY_LABEL]: repositoryLabel(p.repository) } : {}),
    },
    annotations: definedOnly({ [REPOSITORY_ANNOTATION]: p.repository, [EXPIRES_ANNOTATION]: p.expiresAt }),
  }
}

export type Shape = 'knative' | 'kserve-container' | 'kserve-mlflow'
export type Manifest = Record<string, unknown> & { metadata: { name: string; namespace: string } }

export interface RenderValues {
  readonly name: string
  readonly namespace: string
  readonly modelUri: string
  readonly modelName?: string
  readonly modelVersion?: string
  readonly runId?: string
  /** Image pinned by digest (repo@sha256:…), for the image shapes. */
  readonly image?: string
  readonly digest?: string
  /** Where KServe's storage initializer reads the model, for kserve-mlflow. */
  readonly storageUri?: string
  /** Provenance: on the object's own metadata only, so re-running a workflow makes no new revision. */
  readonly gitSha?: string
  readonly workflowRunUrl?: string
  readonly preview?: PreviewMeta
}

/** What shapes the object besides the values: which of the three shapes, and the user's settings. */
export interface RenderOptions extends ServingSettings {
  readonly shape: Shape
}

/** What the user sets on the serving object and its pods. */
export interface ServingSettings {
  /** Container env, after ours (a user's variable of the same name wins). */
  readonly env: readonly EnvVar[]
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
  readonly resources: Resources | undefined
  readonly minScale: number | undefined
  readonly maxScale: number | undefined
  /** Secrets (dockerconfigjson) the pods pull the image with. */
  readonly imagePullSecrets?: readonly string[]
  /** The ServiceAccount the serving pods run as. */
  readonly serviceAccount?: string
}

export function shapeOf(target: Target, serving: 'image' | 'mlflow-runtime'): Shape {
  if (target === 'knative') return 'knative'
  return serving === 'mlflow-runtime' ? 'kserve-mlflow' : 'kserve-container'
}

const KIND: Record<Shape, { apiVersion: string; kind: string }> = {
  knative: { apiVersion: 'serving.knative.dev/v1', kind: 'Service' },
  'kserve-container': { apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService' },
  'kserve-mlflow': { apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService' },
}

/** Renders the manifest: the user's template (already parsed) or the built-in one, then our settings. */
export function renderServingManifest(
  values: RenderValues,
  options: RenderOptions,
  template?: Record<string, unknown>,
): Manifest {
  const base = template ? substitute(template, templateVariables(values)) : builtIn(values, options.shape)
  // Manifests are JSON data; a JSON copy also keeps objects in this realm (js-yaml dumps only those).
  const manifest = JSON.parse(JSON.stringify(base)) as Record<string, unknown>
  checkKind(manifest, options.shape, template !== undefined)

  const metadata = obj(manifest, 'metadata')
  metadata['name'] = values.name
  metadata['namespace'] = values.namespace
  const preview = values.preview && previewMetadata(values.preview)
  Object.assign(obj(metadata, 'labels'), options.labels, preview?.labels, {
    'app.kubernetes.io/managed-by': MANAGED_BY,
    'app.kubernetes.io/name': values.name,
  })
  Object.assign(
    obj(metadata, 'annotations'),
    options.annotations,
    preview?.annotations,
    definedOnly({
      ...modelAnnotations(values),
      [`${ANNOTATION_PREFIX}/git-sha`]: values.gitSha,
      [`${ANNOTATION_PREFIX}/workflow-run`]: values.workflowRunUrl,
    }),
  )

  if (options.shape === 'knative') applyKnative(manifest, values, options)
  else applyKserve(manifest, values, options)
  return manifest as Manifest
}

function modelAnnotations(values: RenderValues): Record<string, string | undefined> {
  return {
    [`${ANNOTATION_PREFIX}/model-uri`]: values.modelUri,
    [`${ANNOTATION_PREFIX}/model-name`]: values.modelName,
    [`${ANNOTATION_PREFIX}/model-version`]: values.modelVersion,
    [`${ANNOTATION_PREFIX}/run-id`]: values.runId,
    [`${ANNOTATION_PREFIX}/image-digest`]: values.digest,
  }
}

function builtIn(values: RenderValues, shape: Shape): Record<string, unknown> {
  const head = { ...KIND[shape], metadata: { name: values.name, namespace: values.namespace } }
  if (shape === 'knative') {
    return { ...head, spec: { template: { spec: { containers: [{ name: 'mlserver' }] } } } }
  }
  if (shape === 'kserve-container') {
    return { ...head, spec: { predictor: { containers: [{ name: 'kserve-container' }] } } }
  }
  return { ...head, spec: { predictor: { model: { modelFormat: { name: 'mlflow' } } } } }
}

function applyKnative(manifest: Record<string, unknown>, values: RenderValues, o: RenderOptions): void {
  const template = obj(obj(manifest, 'spec'), 'template')
  const meta = obj(template, 'metadata')
  // Revision-level: the model identity (unchanged model → unchanged template → no new revision).
  Object.assign(
    obj(meta, 'annotations'),
    definedOnly({
      ...modelAnnotations(values),
      'autoscaling.knative.dev/min-scale': o.minScale?.toString(),
      'autoscaling.knative.dev/max-scale': o.maxScale?.toString(),
    }),
  )
  Object.assign(obj(meta, 'labels'), { 'app.kubernetes.io/managed-by': MANAGED_BY })
  setPodIdentity(obj(template, 'spec'), o, 'spec.template.spec')
  const container = firstContainer(obj(template, 'spec'), 'spec.template.spec.containers')
  fillContainer(container, values, o, [{ containerPort: SERVING_PORT, name: 'http1' }], {
    path: modelReadyPath(values.name),
  })
}

function applyKserve(manifest: Record<string, unknown>, values: RenderValues, o: RenderOptions): void {
  const predictor = obj(obj(manifest, 'spec'), 'predictor')
  // The predictor is a pod spec inline: the MLflow runtime's pods take these as well.
  setPodIdentity(predictor, o, 'spec.predictor')
  if (o.minScale !== undefined) predictor['minReplicas'] = o.minScale
  if (o.maxScale !== undefined) predictor['maxReplicas'] = o.maxScale
  if (o.shape === 'kserve-mlflow') {
    const model = obj(predictor, 'model')
    obj(model, 'modelFormat')['name'] = 'mlflow'
    // Without v2 KServe looks for a v1 runtime and finds none (NoSupportingRuntime).
    model['protocolVersion'] = 'v2'
    if (!values.storageUri)
      throw new DeployError(
        "the MLflow runtime needs the model's storage location (storageUri), which was not resolved",
      )
    model['storageUri'] = values.storageUri
    mergeEnv(model, o.env)
    if (o.resources) model['resources'] = resourcesObject(o.resources)
    return
  }
  const container = firstContainer(predictor, 'spec.predictor.containers')
  container['name'] ??= 'kserve-container'
  fillContainer(
    container,
    values,
    o,
    [{ containerPort: SERVING_PORT, protocol: 'TCP' }],
    // KServe's Standard mode runs it as a plain Deployment, where an HTTP probe needs its port
    // (Knative fills it in; Kubernetes refuses the Deployment without it).
    { path: modelReadyPath(values.name), port: SERVING_PORT },
    [{ name: 'PROTOCOL', value: 'v2' }],
  )
}

function fillContainer(
  container: Record<string, unknown>,
  values: RenderValues,
  o: RenderOptions,
  ports: object[],
  probe: { path: string; port?: number },
  extraEnv: EnvVar[] = [],
): void {
  if (!values.image) throw new DeployError('no image to deploy: the image stage did not produce one')
  container['image'] = values.image
  container['ports'] ??= ports
  // The server names the model after this variable: the path users call is /v2/models/<name>/infer.
  mergeEnv(container, [{ name: MODEL_NAME_VARIABLE, value: values.name }, ...extraEnv, ...o.env])
  container['readinessProbe'] ??= { httpGet: probe }
  if (o.resources) container['resources'] = resourcesObject(o.resources)
}

/**
 * Pull secrets and service account on a pod spec. A template's pull secrets stay and ours are
 * added (each name once: Knative's list is keyed by name); our service account replaces the
 * template's, as every other input does.
 */
function setPodIdentity(spec: Record<string, unknown>, o: RenderOptions, path: string): void {
  if (o.imagePullSecrets?.length) {
    const given = spec['imagePullSecrets'] ?? []
    if (!Array.isArray(given) || !given.every((s) => isPlainObject(s) && typeof s['name'] === 'string')) {
      throw new DeployError(`template field ${path}.imagePullSecrets must be a list of {name: <secret>}`)
    }
    const byName = new Map<string, object>(given.map((s: { name: string }) => [s.name, s]))
    for (const name of o.imagePullSecrets) if (!byName.has(name)) byName.set(name, { name })
    spec['imagePullSecrets'] = [...byName.values()]
  }
  if (o.serviceAccount) spec['serviceAccountName'] = o.serviceAccount
}

/** Adds env vars to a container, later entries replacing earlier ones of the same name. */
function mergeEnv(container: Record<string, unknown>, vars: readonly EnvVar[]): void {
  const existing = Array.isArray(container['env']) ? (container['env'] as { name: string }[]) : []
  const byName = new Map<string, object>(existing.map((e) => [e.name, e]))
  for (const v of vars) byName.set(v.name, { ...v })
  container['env'] = [...byName.values()]
}

function resourcesObject(r: Resources): Record<string, unknown> {
  return definedOnly({ requests: r.requests && { ...r.requests }, limits: r.limits && { ...r.limits } })
}

// --- templates ----------------------------------------------------------------------------------

/** Parses a user template: exactly one YAML document holding one object. */
export function parseTemplate(text: string, path: string): Record<string, unknown> {
  let docs: unknown[]
  try {
    docs = text
      .split(/^---\s*$/m)
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => loadYaml(d))
  } catch (err) {
    throw new DeployError(`template ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (docs.length !== 1)
    throw new DeployError(
      `template ${path} holds ${docs.length} documents; it must hold exactly one Service or InferenceService`,
    )
  const doc = docs[0]
  if (!isPlainObject(doc))
    throw new DeployError(`template ${path} is not a Kubernetes object (a YAML map with apiVersion and kind)`)
  return doc
}

export function templateVariables(v: RenderValues): Record<string, string> {
  return definedOnly({
    name: v.name,
    namespace: v.namespace,
    image: v.image,
    digest: v.digest,
    model_uri: v.modelUri,
    model_name: v.modelName,
    model_version: v.modelVersion,
    run_id: v.runId,
    storage_uri: v.storageUri,
  })
}

/**
 * Replaces $var and ${var} inside string values of a parsed template (mlflow-knative's $name,
 * $namespace, $image and more). Values are inserted into strings, so they can never become
 * YAML structure. `$$` is a literal `$`; unknown variables are left as they are.
 */
export function substitute(node: unknown, vars: Record<string, string>): unknown {
  if (typeof node === 'string') {
    return node.replace(/\$(?:\$|\{([a-z_]+)\}|([a-z_]+))/g, (match, braced?: string, bare?: string) => {
      if (match === '$$') return '$'
      const key = (braced ?? bare)!
      return key in vars ? vars[key]! : match
    })
  }
  if (Array.isArray(node)) return node.map((n) => substitute(n, vars))
  if (isPlainObject(node)) return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, substitute(v, vars)]))
  return node
}

function checkKind(manifest: Record<string, unknown>, shape: Shape, fromTemplate: boolean): void {
  const want = KIND[shape]
  if (manifest['apiVersion'] !== want.apiVersion || manifest['kind'] !== want.kind) {
    const got = `${String(manifest['apiVersion'] ?? '?')} ${String(manifest['kind'] ?? '?')}`
    const where = fromTemplate ? 'the template is' : 'built-in manifest is'
    throw new DeployError(
      `${where} a ${got}, but target ${shape.startsWith('kserve') ? 'kserve' : 'knative'} needs a ${want.apiVersion} ${want.kind}`,
    )
  }
}

// --- small object helpers -----------------------------------------------------------------------

/** The child map at `key`, created when missing; a non-map there is a template error. */
function obj(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const child = parent[key]
  if (child === undefined || child === null) return (parent[key] = {}) as Record<string, unknown>
  if (!isPlainObject(child)) throw new DeployError(`template field ${key} must be a map`)
  return child
}

function firstContainer(spec: Record<string, unknown>, path: string): Record<string, unknown> {
  const containers = spec['containers']
  if (containers === undefined) {
    const created = [{}]
    spec['containers'] = created
    return created[0]!
  }
  if (!Array.isArray(containers) || containers.length !== 1 || !isPlainObject(containers[0])) {
    throw new DeployError(`${path} must hold exactly one container (the model server)`)
  }
  return containers[0]
}

function definedOnly<T>(record: Record<string, T | undefined>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as Record<string, T>
}
