// The model cache in GitHub's own cache service (@actions/cache): on GitHub-hosted runners every
// job starts on a fresh machine, so the runner's tool cache never sees a model twice; the
// repository's Actions cache does. A cache is an optimisation: a failed restore or save is logged
// and the deploy goes on (downloading, or without saving).
import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { moveDirectory } from '../util/fs.js'
import type { Logger } from '../util/logger.js'

/** The part of @actions/cache this module uses: its transport, injected (tests and the rig). */
export interface ActionsCacheApi {
  restoreCache(paths: string[], primaryKey: string): Promise<string | undefined>
  saveCache(paths: string[], key: string): Promise<number>
}

/** The cache entry's key: one entry per exact model (the key says which files of which sizes). */
export function actionsCacheKey(modelKey: string): string {
  return `mlflow-k8s-deploy-model-${modelKey}`
}

export interface GitHubModelCacheOptions {
  readonly api: ActionsCacheApi
  /**
   * Where entries are restored to and saved from. The service keys an entry by its paths too, so
   * this must be the same path in every job: RUNNER_TEMP's subdirectory is (/home/runner/work/_temp
   * on GitHub's Linux runners).
   */
  readonly root: string
  readonly log: Logger
}

export class GitHubModelCache {
  private readonly uploads: Promise<void>[] = []

  constructor(private readonly options: GitHubModelCacheOptions) {}

  /** The restored model directory, or undefined on a miss or when the service fails. */
  async find(key: string): Promise<string | undefined> {
    const dir = this.path(key)
    const started = performance.now()
    try {
      const hit = await this.options.api.restoreCache([dir], actionsCacheKey(key))
      if (!hit) return undefined
      // A restore that wrote nothing usable is a miss.
      if (!(await stat(join(dir, 'MLmodel')).catch(() => undefined))?.isFile()) {
        this.options.log.warning(`the Actions cache entry ${hit} restored no MLmodel: downloading the model instead`)
        await rm(dir, { recursive: true, force: true })
        return undefined
      }
      this.options.log.info(`model restored from the Actions cache in ${seconds(started)} s`)
      return dir
    } catch (err) {
      this.options.log.warning(`the Actions cache could not be read (${message(err)}): downloading the model instead`)
      await rm(dir, { recursive: true, force: true })
      return undefined
    }
  }

  /**
   * Moves the complete model directory in place and starts its upload; returns where it now is.
   * The upload runs beside the build and the rollout: the run waits for it at its end (settle).
   */
  async save(key: string, dir: string): Promise<string> {
    const dest = this.path(key)
    await moveDirectory(dir, dest)
    this.uploads.push(this.upload(key, dest))
    return dest
  }

  /** Waits for the uploads started by save, until `signal` aborts (then they are abandoned). */
  async settle(signal: AbortSignal): Promise<void> {
    if (!this.uploads.length) return
    const aborted = new Promise<'aborted'>((resolve) => {
      if (signal.aborted) resolve('aborted')
      signal.addEventListener('abort', () => resolve('aborted'), { once: true })
    })
    const ended = await Promise.race([Promise.all(this.uploads).then(() => 'ended' as const), aborted])
    if (ended === 'aborted')
      this.options.log.warning(
        'the model upload to the Actions cache did not end in time: the next build downloads the model again',
      )
  }

  /** Never rejects: a failed upload is logged and the deploy goes on. */
  private async upload(key: string, dest: string): Promise<void> {
    const started = performance.now()
    try {
      // @actions/cache words its own failures (another job saving the same key first is the usual
      // one: that entry serves the next run) and returns -1.
      const id = await this.options.api.saveCache([dest], actionsCacheKey(key))
      if (id === -1) this.options.log.info('the model was not saved to the Actions cache; the deploy goes on')
      else this.options.log.info(`model saved to the Actions cache in ${seconds(started)} s`)
    } catch (err) {
      this.options.log.warning(`the model was not saved to the Actions cache (${message(err)}); the deploy goes on`)
    }
  }

  private path(key: string): string {
    return join(this.options.root, key)
  }
}

function seconds(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(1)
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export type ModelCacheMode = 'auto' | 'github' | 'runner' | 'off'
export type ModelCacheKind = 'github' | 'runner' | 'directory' | 'off'

/** Whether this job can reach GitHub's cache service (the runner gives actions these variables). */
export function actionsCacheAvailable(env: Readonly<Record<string, string | undefined>>): boolean {
  return Boolean(env['ACTIONS_RUNTIME_TOKEN'] && (env['ACTIONS_RESULTS_URL'] || env['ACTIONS_CACHE_URL']))
}

/**
 * Which model cache a run uses. `auto`: a directory named by MLFLOW_K8S_DEPLOY_CACHE (local runs);
 * on GitHub-hosted runners the Actions cache (their tool cache dies with the job); on self-hosted
 * runners the tool cache (on disk across jobs, no upload); elsewhere none. Pure.
 */
export function chooseModelCache(
  mode: ModelCacheMode,
  env: Readonly<Record<string, string | undefined>>,
): { kind: ModelCacheKind } | { problem: string } {
  const github = actionsCacheAvailable(env)
  const runner = Boolean(env['RUNNER_TOOL_CACHE'] && env['RUNNER_TEMP'])
  switch (mode) {
    case 'off':
      return { kind: 'off' }
    case 'github':
      return github
        ? { kind: 'github' }
        : {
            problem:
              "`github` needs GitHub's cache service, which this step cannot reach (no ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL): it exists only inside GitHub Actions; use `auto` to cache where possible",
          }
    case 'runner':
      return runner
        ? { kind: 'runner' }
        : {
            problem:
              '`runner` needs a runner tool cache (RUNNER_TOOL_CACHE and RUNNER_TEMP), which this step has not: use `auto` or `off`',
          }
    case 'auto':
      if (env['MLFLOW_K8S_DEPLOY_CACHE']) return { kind: 'directory' }
      if (github && env['RUNNER_ENVIRONMENT'] !== 'self-hosted') return { kind: 'github' }
      if (runner) return { kind: 'runner' }
      return { kind: github ? 'github' : 'off' }
  }
}
