// The composition root's wiring: each outside system built once, on first use, from the inputs.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RunContext } from './github-context.js'
import type { Inputs } from './inputs.js'
import { createImageDeps, type ImageDeps } from './image/index.js'
import { actionsExec } from './image/exec.js'
import { Cosign } from './image/signing.js'
import { GitHubClient } from './github/client.js'
import { ServingCluster } from './k8s/index.js'
import { createMlflow, DirectoryCache, ToolCache, type Mlflow, type ModelCache } from './mlflow/index.js'
import { chooseModelCache, GitHubModelCache } from './github/model-cache.js'
import type { Services } from './pipeline/context.js'
import { UndiciTransport } from './util/http.js'
import type { Logger } from './util/logger.js'

export interface ServiceDeps {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly log: Logger
  readonly mask: (secret: string) => void
  readonly getIdToken: (audience: string | undefined) => Promise<string>
  readonly run: RunContext
  readonly signal: AbortSignal
}

export function createServices(inputs: Inputs, deps: ServiceDeps): Services {
  const { env, log } = deps
  let mlflow: Mlflow | undefined
  let images: ImageDeps | undefined
  let cluster: ServingCluster | undefined
  let cosign: Cosign | undefined
  let github: GitHubClient | undefined
  const workDir = mkdtempSync(join(env['RUNNER_TEMP'] || tmpdir(), 'mlflow-k8s-deploy-'))
  const cache = createModelCache(inputs, env, log)

  return {
    workDir,
    run: deps.run,
    modelCache: () => cache,
    now: () => Date.now(),
    github: () => {
      const { token } = inputs.github
      const repository = deps.run.repository
      if (!token || !repository) return undefined
      return (github ??= new GitHubClient({
        apiUrl: deps.run.apiUrl,
        repository,
        token,
        // A short budget: the PR comment and deployment status are extras, never worth a long wait.
        transport: new UndiciTransport({
          env,
          headersTimeoutMs: 30_000,
          retry: { retries: 2, baseDelayMs: 500, maxDelayMs: 2_000, budgetMs: 10_000 },
        }),
      }))
    },
    mlflow: () => (mlflow ??= createMlflow(inputs.mlflow, { env, log, mask: deps.mask, getIdToken: deps.getIdToken })),
    images: () => (images ??= createImageDeps({ env, log, mask: deps.mask, signal: deps.signal })),
    // The action's environment reaches cosign whole: DOCKER_CONFIG, and GitHub's OIDC request variables.
    cosign: () => (cosign ??= new Cosign({ exec: actionsExec, log })),
    cluster: () =>
      (cluster ??= ServingCluster.connect(
        { kubeconfig: inputs.cluster.kubeconfig, kubeContext: inputs.cluster.kubeContext },
        log,
        { env },
      )),
  }
}

/** The model cache `model-cache` and the runner call for (see chooseModelCache). */
function createModelCache(
  inputs: Inputs,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
): ModelCache | undefined {
  const choice = chooseModelCache(inputs.modelCache, env)
  if ('problem' in choice) return undefined // refused by parseInputs for the actions that download
  switch (choice.kind) {
    case 'github':
      return new GitHubModelCache({
        // Loaded on first use: most runs hit the image cache and never download a model.
        api: {
          restoreCache: async (paths, key) => (await import('@actions/cache')).restoreCache(paths, key),
          saveCache: async (paths, key) => (await import('@actions/cache')).saveCache(paths, key),
        },
        root: join(env['RUNNER_TEMP'] || tmpdir(), 'mlflow-k8s-deploy-models'),
        log,
      })
    case 'runner':
      return new ToolCache()
    case 'directory':
      return new DirectoryCache(env['MLFLOW_K8S_DEPLOY_CACHE']!)
    case 'off':
      return undefined
  }
}
