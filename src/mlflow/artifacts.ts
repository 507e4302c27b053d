// A model's files through the tracking server's proxied artifact endpoints: listed recursively,
// small files read into memory, the whole model streamed to disk (several files at once, each
// retried, sizes verified) into a temporary directory renamed into place only when complete.
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { moveDirectory } from '../util/fs.js'
import { errorCode } from '../util/net-errors.js'
import { DEFAULT_RETRY, retrying, type RetryPolicy } from '../util/retry.js'
import type { Logger } from '../util/logger.js'
import type { MlflowClient } from './client.js'
import { MlflowError } from './errors.js'

export interface ModelFile {
  /** Relative to the model directory, '/'-separated. */
  readonly path: string
  readonly size: number
}

export interface ProxiedLocation {
  /** The server that serves the files (tracking URI, or the netloc named in the URI). */
  readonly base: string
  /** Path under /api/2.0/mlflow-artifacts/artifacts/. */
  readonly path: string
}

/**
 * Where the tracking server serves an artifact URI (mlflow_artifacts_repo.py `resolve_uri`), or a
 * sentence saying why it cannot.
 */
export function proxiedLocation(trackingUri: string, artifactUri: string): ProxiedLocation | string {
  const tracking = new URL(trackingUri)
  const trim = (p: string) => p.replace(/^\/+|\/+$/g, '')
  const m = /^mlflow-artifacts:(?:\/\/([^/]*))?(\/.*)?$/.exec(artifactUri)
  if (m) {
    const base = m[1]
      ? `${tracking.protocol}//${m[1]}${tracking.pathname.replace(/\/+$/, '')}`
      : trackingUri.replace(/\/+$/, '')
    return { base, path: trim(decodeURIComponent(m[2] ?? '')) }
  }
  const marker = '/api/2.0/mlflow-artifacts/artifacts'
  if (/^https?:\/\//.test(artifactUri) && artifactUri.includes(marker)) {
    const at = artifactUri.indexOf(marker)
    return { base: artifactUri.slice(0, at), path: trim(decodeURIComponent(artifactUri.slice(at + marker.length))) }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(artifactUri)?.[1] ?? 'a local path'
  return `the model's files are at ${artifactUri} (${scheme}), which the tracking server does not proxy: start MLflow with --serve-artifacts and an --artifacts-destination, or with target kserve use serving: mlflow-runtime (KServe reads that location itself)`
}

function locate(client: MlflowClient, artifactUri: string): ProxiedLocation {
  const loc = proxiedLocation(client.trackingUri, artifactUri)
  if (typeof loc === 'string') throw new MlflowError(loc)
  return loc
}

/** Every file under the model directory, with sizes, sorted by path. */
export async function listModelFiles(
  client: MlflowClient,
  artifactUri: string,
  signal?: AbortSignal,
): Promise<ModelFile[]> {
  const { base, path: root } = locate(client, artifactUri)
  const files: ModelFile[] = []
  let dirs = ['']
  while (dirs.length) {
    // One level at a time, its directories listed in parallel (bounded by the level's width).
    const levels = await mapLimit(
      dirs,
      4,
      (dir, each) => client.listArtifacts(base, [root, dir].filter(Boolean).join('/'), each),
      signal,
    )
    const next: string[] = []
    levels.forEach((entries, i) => {
      for (const e of entries) {
        confine(base, artifactUri, e.path)
        // The proxied listing gives basenames; tolerate servers that give full paths.
        const rel = [dirs[i], e.path.split('/').pop()].filter(Boolean).join('/')
        if (e.is_dir) next.push(rel)
        else files.push({ path: rel, size: Number(e.file_size ?? 0) })
      }
    })
    dirs = next
  }
  if (files.length === 0)
    throw new MlflowError(`no files at ${artifactUri}: the model's artifacts are missing on the server`)
  if (!files.some((f) => f.path === 'MLmodel')) {
    throw new MlflowError(
      `${artifactUri} is not an MLflow model directory (no MLmodel file); files there: ${files
        .slice(0, 10)
        .map((f) => f.path)
        .join(', ')}`,
    )
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** One small model file (MLmodel, requirements.txt) as bytes; undefined when it does not exist. */
export async function readModelFile(
  client: MlflowClient,
  artifactUri: string,
  path: string,
  signal?: AbortSignal,
  maxBytes = 16 * 1024 * 1024,
): Promise<Buffer | undefined> {
  const { base, path: root } = locate(client, artifactUri)
  let res
  try {
    res = await client.openArtifact(base, `${root}/${path}`, signal)
  } catch (err) {
    if (err instanceof MlflowError && err.status === 404) return undefined
    throw err
  }
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length
    if (total > maxBytes) {
      res.body.destroy()
      throw new MlflowError(`${path} of ${artifactUri} is larger than ${maxBytes} bytes; not reading it into memory`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

export interface DownloadOptions {
  readonly concurrency?: number
  readonly retry?: RetryPolicy
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  readonly now?: () => number
  readonly log?: Logger
  readonly signal?: AbortSignal
}

/**
 * Downloads `files` of the model at `artifactUri` into `destDir`, atomically: everything lands in
 * a sibling temporary directory first, and `destDir` appears (replacing any old one) only when
 * every file is complete with the listed size.
 */
export async function downloadModel(
  client: MlflowClient,
  artifactUri: string,
  files: readonly ModelFile[],
  destDir: string,
  opts: DownloadOptions = {},
): Promise<string> {
  const { base, path: root } = locate(client, artifactUri)
  const tmp = `${destDir}.partial-${randomBytes(6).toString('hex')}`
  // Every path checked before anything is fetched or written.
  const locals = files.map((file) => confine(base, artifactUri, file.path, tmp))
  await mkdir(tmp, { recursive: true })
  try {
    // A failure aborts the siblings and waits for them, so nothing writes into tmp once it goes.
    await mapLimit(
      files,
      opts.concurrency ?? 4,
      (file, signal) =>
        downloadFile(client, base, `${root}/${file.path}`, file, locals[files.indexOf(file)]!, artifactUri, {
          ...opts,
          signal,
        }),
      opts.signal,
    )
    await moveDirectory(tmp, destDir)
    return destDir
  } catch (err) {
    await rm(tmp, { recursive: true, force: true })
    throw err
  }
}

async function downloadFile(
  client: MlflowClient,
  base: string,
  remote: string,
  file: ModelFile,
  local: string,
  artifactUri: string,
  opts: DownloadOptions,
): Promise<void> {
  await mkdir(dirname(local), { recursive: true })
  // The transport retries a request that got no answer; this retries what it cannot see: a body
  // cut off midway, or one that ends short of the listed size.
  await retrying<void>(
    opts.retry ?? DEFAULT_RETRY,
    async (attempt) => {
      let problem: string
      try {
        const res = await client.openArtifact(base, remote, opts.signal)
        await pipeline(res.body, createWriteStream(local), { signal: opts.signal })
        const got = (await stat(local)).size
        if (got === file.size) return { done: undefined }
        problem = `got ${got} bytes, listed ${file.size}`
      } catch (err) {
        opts.signal?.throwIfAborted()
        if (err instanceof MlflowError && err.status === 404) {
          throw new MlflowError(
            `${file.path} vanished from ${artifactUri} during the download (listed, then HTTP 404): the model's artifacts were deleted or replaced; run again`,
            404,
          )
        }
        if (err instanceof MlflowError) throw err
        problem = errorCode(err) ?? (err as Error).message
      }
      return {
        retry: `${file.path}: ${problem}`,
        giveUp: () => {
          throw new MlflowError(
            `downloading ${file.path} from ${artifactUri} failed after ${attempt} attempts: ${problem}`,
          )
        },
      }
    },
    {
      signal: opts.signal,
      sleep: opts.sleep,
      now: opts.now,
      onRetry: (why, _attempt, delay) => opts.log?.debug(`${why}; retrying in ${delay} ms`),
    },
  )
}

/**
 * Runs `fn` over `items` with at most `limit` at a time; results in input order. The first
 * failure (or an abort of `signal`) aborts the signal every item got, and mapLimit rejects only
 * once the items still running have settled: callers may then clean up what they wrote.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const controller = new AbortController()
  const onAbort = () => controller.abort(signal!.reason)
  if (signal?.aborted) onAbort()
  else signal?.addEventListener('abort', onAbort, { once: true })
  const out = new Array<R>(items.length)
  let next = 0
  let failure: { err: unknown } | undefined
  const worker = async () => {
    while (!failure && !controller.signal.aborted && next < items.length) {
      const i = next++
      try {
        out[i] = await fn(items[i]!, controller.signal)
      } catch (err) {
        failure ??= { err: controller.signal.aborted ? controller.signal.reason : err }
        controller.abort(err)
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
  if (failure) throw failure.err
  controller.signal.throwIfAborted()
  return out
}

/**
 * Why a server-given artifact path cannot be written under the download directory as is, or
 * undefined when it is a plain relative path. '/' separates; a backslash is a separator on Windows
 * runners, so it is refused rather than trusted to be part of a name.
 */
export function artifactPathProblem(path: string): string | undefined {
  if (path.includes('\0')) return 'a NUL character'
  if (path.includes('\\')) return 'a backslash'
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'an absolute path'
  const segments = path.split('/')
  if (segments.includes('..')) return 'a ".." segment'
  if (segments.includes('')) return 'an empty segment'
  if (segments.includes('.')) return 'a "." segment'
  return undefined
}

/** The local file for an artifact path (checked), under `dir` when given. */
function confine(base: string, artifactUri: string, path: string, dir?: string): string {
  let problem = artifactPathProblem(path)
  const local = dir === undefined ? '' : resolve(dir, path)
  if (!problem && dir !== undefined && !local.startsWith(resolve(dir) + sep)) problem = 'a name that resolves elsewhere'
  if (problem) {
    throw new MlflowError(
      `MLflow at ${base} listed the artifact path ${JSON.stringify(path)} in ${artifactUri}: it has ${problem}, which could place a file outside the download directory; nothing was downloaded`,
    )
  }
  return local
}

// --- cache ----------------------------------------------------------------------------------------

/** Where downloaded models are kept between runs (self-hosted runners fetch a version once). */
export interface ModelCache {
  /** The cached model directory for `key`, if complete. */
  find(key: string): Promise<string | undefined>
  /** Takes a complete model directory into the cache; returns the cached path. */
  save(key: string, dir: string): Promise<string>
  /** Waits for what the cache still does in the background (an upload), until `signal` aborts. */
  settle?(signal: AbortSignal): Promise<void>
}

/** The model's identity: where it lives and exactly which files of which sizes. */
export function modelCacheKey(trackingUri: string, artifactUri: string, files: readonly ModelFile[]): string {
  const h = createHash('sha256')
  h.update(`${trackingUri.replace(/\/+$/, '')}\n${artifactUri}\n`)
  for (const f of files) h.update(`${f.path}\t${f.size}\n`)
  return h.digest('hex').slice(0, 32)
}

/** A plain directory: `<root>/<key>`, filled by rename (atomic on one filesystem). */
export class DirectoryCache implements ModelCache {
  constructor(private readonly root: string) {}

  async find(key: string): Promise<string | undefined> {
    const dir = join(this.root, key)
    return (await stat(dir).catch(() => undefined))?.isDirectory() ? dir : undefined
  }

  async save(key: string, dir: string): Promise<string> {
    const dest = join(this.root, key)
    await moveDirectory(dir, dest)
    return dest
  }
}

/** The runner's tool cache (@actions/tool-cache; needs RUNNER_TOOL_CACHE and RUNNER_TEMP). */
export class ToolCache implements ModelCache {
  async find(key: string): Promise<string | undefined> {
    const tc = await import('@actions/tool-cache')
    return tc.find(`mlflow-model-${key}`, '1.0.0') || undefined
  }

  async save(key: string, dir: string): Promise<string> {
    const tc = await import('@actions/tool-cache')
    // cacheDir copies, then marks the entry complete: a half-copied entry is never found.
    const cached = await tc.cacheDir(dir, `mlflow-model-${key}`, '1.0.0')
    await rm(dir, { recursive: true, force: true })
    return cached
  }
}
