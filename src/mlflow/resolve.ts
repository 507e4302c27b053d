// From a model URI to the exact model and where its files really are, the way MLflow's Python
// client resolves it (mlflow/store/artifact/utils/models.py, runs_artifact_repo.py). When the
// thing named does not exist, the error lists what does.
import type { ModelRef } from './model-uri.js'
import { MlflowError } from './errors.js'
import { filterLiteral, type MlflowClient, type ModelVersion, type RegisteredModel } from './client.js'

export interface ResolvedModel {
  /** The URI as given. */
  readonly uri: string
  readonly name?: string
  readonly version?: string
  readonly stage?: string
  readonly runId?: string
  /** The version's `source` as registered (in MLflow 3 often models:/m-<id>, not a location). */
  readonly source?: string
  /** The MLflow 3 LoggedModel id. */
  readonly modelId?: string
  /** Where the files are: get-download-uri, followed through runs:/ and models:/ indirections. */
  readonly artifactUri: string
  readonly status?: string
  readonly aliases: readonly string[]
  readonly tags: Readonly<Record<string, string>>
  readonly createdAt?: number
}

const STAGES = ['None', 'Staging', 'Production', 'Archived']

/** The canonical spelling of a stage, or undefined when it is not one. */
export function canonicalStage(stage: string): string | undefined {
  return STAGES.find((s) => s.toLowerCase() === stage.toLowerCase())
}

/** The highest version number among some versions. */
export function highestVersion(versions: readonly ModelVersion[]): ModelVersion | undefined {
  return versions.reduce<ModelVersion | undefined>(
    (best, v) => (!best || Number(v.version) > Number(best.version) ? v : best),
    undefined,
  )
}

/** "a, b, c and 7 more" — lists stay one line. */
export function listSome(items: readonly string[], max = 12): string {
  if (items.length <= max) return items.join(', ')
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`
}

/** "Production (v1, v2), Staging (v3)": every version with a stage, Production first; "" when none. */
export function stagesInUse(versions: readonly ModelVersion[]): string {
  return ['Production', 'Staging', 'Archived']
    .map((stage) => {
      const numbers = versions
        .filter((v) => canonicalStage(v.current_stage ?? '') === stage)
        .map((v) => Number(v.version))
        .sort((a, b) => a - b)
      return numbers.length ? `${stage} (${listSome(numbers.map((n) => `v${n}`))})` : ''
    })
    .filter(Boolean)
    .join(', ')
}

/** Joins an artifact root and a relative path with exactly one slash. */
export function joinUri(root: string, path: string): string {
  const rel = path.replace(/^\/+|\/+$/g, '')
  return rel ? `${root.replace(/\/+$/, '')}/${rel}` : root.replace(/\/+$/, '')
}

const isNotFound = (err: unknown) => err instanceof MlflowError && err.status === 404

export async function resolveModelRef(
  client: MlflowClient,
  ref: ModelRef,
  signal?: AbortSignal,
): Promise<ResolvedModel> {
  switch (ref.kind) {
    case 'version': {
      const mv = await client.getModelVersion(ref.name, ref.version, signal).catch(async (err) => {
        if (!isNotFound(err)) throw err
        const model = await registeredModel(client, ref.name, ref.uri, signal)
        const versions = await versionNumbers(client, model.name, signal)
        throw new MlflowError(
          `${ref.uri}: model "${ref.name}" has no version ${ref.version}; ${versions.length ? `its versions: ${listSome(versions)}` : 'it has no versions'}`,
          404,
        )
      })
      return fromVersion(client, ref.uri, mv, signal)
    }
    case 'alias': {
      const mv = await client.getModelVersionByAlias(ref.name, ref.alias, signal).catch(async (err) => {
        if (!isNotFound(err) && !(err instanceof MlflowError && err.code === 'INVALID_PARAMETER_VALUE')) throw err
        const model = await registeredModel(client, ref.name, ref.uri, signal)
        throw new MlflowError(`${ref.uri}: model "${ref.name}" has no alias "${ref.alias}"; ${aliasList(model)}`, 404)
      })
      return fromVersion(client, ref.uri, mv, signal)
    }
    case 'stage': {
      const stage = canonicalStage(ref.stage)
      if (!stage) {
        const model = await registeredModel(client, ref.name, ref.uri, signal)
        throw new MlflowError(
          `${ref.uri}: "${ref.stage}" is not a version number, a stage (${STAGES.join(', ')}) or "latest"; an alias is written models:/${ref.name}@<alias> (${aliasList(model)})`,
        )
      }
      const inStage = await client.getLatestVersions(ref.name, [stage], signal).catch(async (err) => {
        if (!isNotFound(err)) throw err
        await registeredModel(client, ref.name, ref.uri, signal)
        throw err
      })
      const newest = highestVersion(inStage)
      if (!newest) {
        // get-latest-versions gives one version per stage; the search gives them all.
        const all = await client.searchModelVersions(`name = ${filterLiteral(ref.name)}`, { limit: 1000 }, signal)
        const used = stagesInUse(all)
        throw new MlflowError(
          `${ref.uri}: no version of model "${ref.name}" is in stage ${stage}; ${used ? `stages in use: ${used}` : 'none of its versions has a stage'}`,
          404,
        )
      }
      // get-latest-versions answers omit aliases; the full record has them.
      return fromVersion(client, ref.uri, await client.getModelVersion(ref.name, newest.version, signal), signal)
    }
    case 'latest': {
      const latest = await client.getLatestVersions(ref.name, [], signal).catch(async (err) => {
        if (!isNotFound(err)) throw err
        await registeredModel(client, ref.name, ref.uri, signal)
        throw err
      })
      const newest = highestVersion(latest)
      if (!newest) throw new MlflowError(`${ref.uri}: model "${ref.name}" has no versions`, 404)
      return fromVersion(client, ref.uri, await client.getModelVersion(ref.name, newest.version, signal), signal)
    }
    case 'run':
      return fromRun(client, ref.uri, ref.runId, ref.path, signal)
    case 'logged-model':
      return fromLoggedModel(client, ref.uri, ref.modelId, signal)
  }
}

async function fromVersion(
  client: MlflowClient,
  uri: string,
  mv: ModelVersion,
  signal?: AbortSignal,
): Promise<ResolvedModel> {
  if (mv.status && mv.status !== 'READY') {
    throw new MlflowError(
      `${uri}: version ${mv.version} of "${mv.name}" is ${mv.status}${mv.status_message ? ` (${mv.status_message})` : ''}; only READY versions can be deployed`,
    )
  }
  const downloadUri = await client.getDownloadUri(mv.name, mv.version, signal)
  const located = await locate(client, uri, downloadUri, 0, signal)
  return {
    uri,
    name: mv.name,
    version: mv.version,
    stage: mv.current_stage,
    runId: mv.run_id || located.runId,
    source: mv.source,
    // MLflow 3.17's REST answer omits model_id; the source names the logged model then.
    modelId: mv.model_id || /^models:\/(m-[0-9a-f]+)$/.exec(mv.source ?? '')?.[1] || located.modelId,
    artifactUri: located.artifactUri,
    status: mv.status,
    aliases: mv.aliases ?? [],
    tags: Object.fromEntries((mv.tags ?? []).map((t) => [t.key, t.value])),
    createdAt: mv.creation_timestamp === undefined ? undefined : Number(mv.creation_timestamp),
  }
}

interface Located {
  artifactUri: string
  runId?: string
  modelId?: string
}

/** Follows runs:/ and models:/ download URIs (versions registered by old clients or by hand). */
async function locate(
  client: MlflowClient,
  uri: string,
  location: string,
  depth: number,
  signal?: AbortSignal,
): Promise<Located> {
  if (depth > 3)
    throw new MlflowError(`${uri}: the download URI ${location} points through too many models:/ indirections`)
  const runs = /^runs:\/([^/]+)\/?(.*)$/.exec(location)
  if (runs) return runLocation(client, uri, runs[1]!, runs[2]!, signal)
  const models = /^models:\/(.+)$/.exec(location)
  if (models) {
    const [first, ...rest] = models[1]!.replace(/^\/+/, '').split('/')
    if (first!.startsWith('m-') && !first!.includes('@')) {
      const lm = await client.getLoggedModel(first!, signal)
      return {
        artifactUri: joinUri(lm.info.artifact_uri ?? '', rest.join('/')),
        modelId: first,
        runId: lm.info.source_run_id,
      }
    }
    if (rest.length >= 1 && /^\d+$/.test(rest[0]!)) {
      const next = await client.getDownloadUri(first!, rest[0]!, signal)
      return locate(client, uri, joinUri(next, rest.slice(1).join('/')), depth + 1, signal)
    }
    throw new MlflowError(`${uri}: cannot follow the download URI ${location}`)
  }
  return { artifactUri: location }
}

/** runs:/<id>/<path>: the run's artifacts, or (MLflow 3) the run's logged model of that name. */
async function runLocation(
  client: MlflowClient,
  uri: string,
  runId: string,
  path: string,
  signal?: AbortSignal,
): Promise<Located> {
  const run = await client.getRun(runId, signal).catch((err) => {
    if (isNotFound(err))
      throw new MlflowError(`${uri}: run ${runId} does not exist on MLflow at ${client.trackingUri}`, 404)
    throw err
  })
  const root = run.info.artifact_uri ?? ''
  const runFiles = await client.listRunArtifacts(runId, path, signal)
  if (runFiles.length > 0) return { artifactUri: joinUri(root, path), runId }
  // MLflow 3 stores log_model(name=...) output under the LoggedModel, not the run.
  const [name, ...rest] = path.split('/')
  const models = await client.searchLoggedModels([run.info.experiment_id], `name = ${filterLiteral(name!)}`, signal)
  const match = models.find((m) => m.info.source_run_id === runId)
  if (match?.info.artifact_uri) {
    return { artifactUri: joinUri(match.info.artifact_uri, rest.join('/')), runId, modelId: match.info.model_id }
  }
  const top = (await client.listRunArtifacts(runId, '', signal)).map((f) => f.path)
  const logged = (
    await client.searchLoggedModels([run.info.experiment_id], `source_run_id = '${runId}'`, signal).catch(() => [])
  )
    .filter((m) => m.info.source_run_id === runId)
    .map((m) => m.info.name ?? m.info.model_id)
  throw new MlflowError(
    `${uri}: run ${runId} has no artifacts at "${path}" and no logged model named "${name}"; ${
      top.length || logged.length
        ? [top.length ? `its artifacts: ${listSome(top)}` : '', logged.length ? `its models: ${listSome(logged)}` : '']
            .filter(Boolean)
            .join('; ')
        : 'it has no artifacts or models'
    }`,
    404,
  )
}

async function fromRun(
  client: MlflowClient,
  uri: string,
  runId: string,
  path: string,
  signal?: AbortSignal,
): Promise<ResolvedModel> {
  const located = await runLocation(client, uri, runId, path, signal)
  return { uri, runId, source: uri, modelId: located.modelId, artifactUri: located.artifactUri, aliases: [], tags: {} }
}

async function fromLoggedModel(
  client: MlflowClient,
  uri: string,
  modelId: string,
  signal?: AbortSignal,
): Promise<ResolvedModel> {
  const lm = await client.getLoggedModel(modelId, signal).catch((err) => {
    if (isNotFound(err)) {
      throw new MlflowError(
        `${uri}: no logged model with id "${modelId}" (a registered model needs a version, alias or stage: models:/${modelId}/<version>, models:/${modelId}@<alias>)`,
        404,
      )
    }
    throw err
  })
  const status = lm.info.status
  if (status && status !== 'LOGGED_MODEL_READY')
    throw new MlflowError(`${uri}: logged model ${modelId} is ${status}; only ready models can be deployed`)
  if (!lm.info.artifact_uri) throw new MlflowError(`${uri}: logged model ${modelId} has no artifact location`)
  return {
    uri,
    runId: lm.info.source_run_id,
    source: uri,
    modelId,
    artifactUri: lm.info.artifact_uri,
    status,
    aliases: [],
    tags: {},
  }
}

/** The registered model, or an error listing the models that exist. */
async function registeredModel(
  client: MlflowClient,
  name: string,
  uri: string,
  signal?: AbortSignal,
): Promise<RegisteredModel> {
  try {
    return await client.getRegisteredModel(name, signal)
  } catch (err) {
    if (!isNotFound(err)) throw err
  }
  const models = (await client.searchRegisteredModels(undefined, 50, signal)).map((m) => `"${m.name}"`)
  throw new MlflowError(
    `${uri}: no registered model named "${name}" on MLflow at ${client.registryUri}; ${
      models.length
        ? `models there: ${listSome(models, 20)}${models.length === 50 ? ' (first 50)' : ''}`
        : 'it has no registered models'
    }`,
    404,
  )
}

async function versionNumbers(client: MlflowClient, name: string, signal?: AbortSignal): Promise<string[]> {
  const versions = await client.searchModelVersions(`name = ${filterLiteral(name)}`, { limit: 1000 }, signal)
  return versions
    .map((v) => Number(v.version))
    .sort((a, b) => a - b)
    .map(String)
}

function aliasList(model: RegisteredModel): string {
  const aliases = (model.aliases ?? []).map((a) => `${a.alias} → v${a.version}`)
  return aliases.length ? `its aliases: ${listSome(aliases)}` : 'it has no aliases'
}
