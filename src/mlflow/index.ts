// The MLflow side of a deploy, as the pipeline uses it: resolve a model URI, look inside the
// model without downloading it, download it (cached).
import { join } from 'node:path'
import { UndiciTransport, type HttpTransport } from '../util/http.js'
import type { Logger } from '../util/logger.js'
import type { ModelRef } from './model-uri.js'
import { createAuth, type AuthProvider } from './auth.js'
import type { MlflowOptions } from './options.js'
import { MlflowClient } from './client.js'
import { MlflowError } from './errors.js'
import { resolveModelRef, type ResolvedModel } from './resolve.js'
import {
  downloadModel,
  listModelFiles,
  mapLimit,
  modelCacheKey,
  readModelFile,
  type ModelCache,
  type ModelFile,
} from './artifacts.js'
import {
  SERVING_INPUT_FILES,
  parseInputExample,
  parseMlmodel,
  parsePythonEnv,
  parseRequirements,
  type InputExample,
  type Mlmodel,
  type PythonEnv,
} from './mlmodel.js'

export type { ResolvedModel } from './resolve.js'
export type { ModelFile, ModelCache } from './artifacts.js'
export { DirectoryCache, ToolCache } from './artifacts.js'
export type { Mlmodel, Signature, InputExample, PythonEnv, ColumnSpec, TensorSpec } from './mlmodel.js'
export { MlflowClient } from './client.js'
export { MlflowError } from './errors.js'
export type { AuthProvider } from './auth.js'
export type { GithubTokenMode, MlflowOptions, OidcOptions } from './options.js'

export interface MlflowDeps {
  /** `core.getIDToken` in the action. */
  readonly getIdToken: (audience: string | undefined) => Promise<string>
  /** `core.setSecret` in the action. */
  readonly mask: (secret: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
  readonly log: Logger
  /** Defaults to an undici transport built from the inputs (CA, insecure TLS, proxy env). */
  readonly http?: HttpTransport
  readonly now?: () => number
}

/** What is inside a model, read without downloading it. */
export interface ModelDetails {
  readonly model: ResolvedModel
  readonly files: readonly ModelFile[]
  readonly mlmodel: Mlmodel
  /** Bytes of the small files read (MLmodel, requirements.txt, python_env.yaml, conda.yaml, examples), by path. */
  readonly smallFiles: Readonly<Record<string, Buffer>>
  readonly requirements?: readonly string[]
  readonly pythonEnv?: PythonEnv
  readonly inputExample?: InputExample
  /** Sum of file sizes. */
  readonly totalBytes: number
}

export interface Downloaded {
  readonly dir: string
  readonly cacheHit: boolean
  readonly key: string
}

const ENV_FILES = ['MLmodel', 'requirements.txt', 'python_env.yaml', 'conda.yaml', 'constraints.txt']

export class Mlflow {
  constructor(
    readonly client: MlflowClient,
    private readonly log: Logger,
  ) {}

  get auth(): AuthProvider {
    return this.client.auth
  }

  resolve(ref: ModelRef, signal?: AbortSignal): Promise<ResolvedModel> {
    return resolveModelRef(this.client, ref, signal)
  }

  readFile(model: ResolvedModel, path: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    return readModelFile(this.client, model.artifactUri, path, signal)
  }

  /** Lists the model's files and reads the small ones that describe it. */
  async inspect(model: ResolvedModel, signal?: AbortSignal): Promise<ModelDetails> {
    const files = await listModelFiles(this.client, model.artifactUri, signal)
    const present = new Set(files.map((f) => f.path))
    const read = async (paths: string[]) => {
      const wanted = paths.filter((p) => present.has(p))
      const bodies = await mapLimit(wanted, 4, (p, each) => this.readFile(model, p, each), signal)
      return Object.fromEntries(wanted.flatMap((p, i) => (bodies[i] ? [[p, bodies[i]]] : []))) as Record<string, Buffer>
    }
    const small = await read(ENV_FILES)
    if (!small.MLmodel) throw new MlflowError(`MLmodel of ${model.artifactUri} could not be read`)
    const mlmodel = parseMlmodel(small.MLmodel.toString('utf8'))
    let inputExample: InputExample | undefined
    if (mlmodel.inputExample) {
      const info = mlmodel.inputExample
      const serving = info.servingInputPath ? [info.servingInputPath] : SERVING_INPUT_FILES
      Object.assign(small, await read([info.artifactPath, ...serving]))
      const servingPath = serving.find((p) => small[p])
      inputExample = parseInputExample(
        servingPath && !info.servingInputPath ? { ...info, servingInputPath: servingPath } : info,
        small[info.artifactPath]?.toString('utf8'),
        servingPath ? small[servingPath]!.toString('utf8') : undefined,
      )
    }
    const details: ModelDetails = {
      model,
      files,
      mlmodel,
      smallFiles: small,
      requirements: small['requirements.txt']
        ? parseRequirements(small['requirements.txt'].toString('utf8'))
        : undefined,
      pythonEnv: small['python_env.yaml'] ? parsePythonEnv(small['python_env.yaml'].toString('utf8')) : undefined,
      inputExample,
      totalBytes: files.reduce((n, f) => n + f.size, 0),
    }
    this.log.debug(
      `model files: ${files.length}, ${details.totalBytes} bytes; flavors: ${Object.keys(mlmodel.flavors).join(', ')}`,
    )
    return details
  }

  /**
   * The model's files on disk. With a cache: a hit returns the cached directory; a miss downloads
   * into `workDir` and hands the complete directory to the cache. Without one: downloads to
   * `workDir/model-<key>`.
   */
  async download(
    details: Pick<ModelDetails, 'model' | 'files'>,
    opts: { workDir: string; cache?: ModelCache; signal?: AbortSignal },
  ): Promise<Downloaded> {
    const key = modelCacheKey(this.client.trackingUri, details.model.artifactUri, details.files)
    const hit = await opts.cache?.find(key)
    if (hit) {
      this.log.info(`model cache hit (${key}): ${hit}`)
      return { dir: hit, cacheHit: true, key }
    }
    const dir = await downloadModel(
      this.client,
      details.model.artifactUri,
      details.files,
      join(opts.workDir, `model-${key}`),
      {
        log: this.log,
        signal: opts.signal,
      },
    )
    const cached = opts.cache ? await opts.cache.save(key, dir) : dir
    return { dir: cached, cacheHit: false, key }
  }
}

/** The composition root's one call: transport, credentials and client from the options. */
export function createMlflow(inputs: MlflowOptions, deps: MlflowDeps): Mlflow {
  if (!inputs.trackingUri) throw new MlflowError('tracking-uri is not set')
  const http =
    deps.http ??
    new UndiciTransport({
      caCertPath: inputs.caCertPath,
      insecureTls: inputs.insecureTls,
      env: deps.env,
      now: deps.now,
      onRetry: (what, attempt, delay) => deps.log.debug(`${what}; retry ${attempt} in ${delay} ms`),
    })
  const auth = createAuth(inputs, { http, getIdToken: deps.getIdToken, mask: deps.mask, env: deps.env, now: deps.now })
  const client = new MlflowClient({
    trackingUri: inputs.trackingUri,
    registryUri: inputs.registryUri,
    http,
    auth,
    log: deps.log,
  })
  return new Mlflow(client, deps.log)
}
