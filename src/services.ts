// The composition root's wiring: each outside system built once, on first use, from the inputs.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RunContext } from './github-context.js'
import type { Inputs } from './inputs.js'
import { createImageDeps, type ImageDeps } from './image/index.js'
import { GitHubClient } from './github/client.js'
import { ServingCluster } from './k8s/index.js'
import { createMlflow, DirectoryCache, ToolCache, type Mlflow, type ModelCache } from './mlflow/index.js'
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
  let github: GitHubClient | undefined
  const workDir = mkdtempSync(join(env['RUNNER_TEMP'] || tmpdir(), 'mlflow-k8s-deploy-'))
  // On a runner the tool cache keeps a model version across jobs (self-hosted: across runs).
  const cache: ModelCache | undefined = env['RUNNER_TOOL_CACHE']
    ? new ToolCache()
    : env['MLFLOW_K8S_DEPLOY_CACHE']
      ? new DirectoryCache(env['MLFLOW_K8S_DEPLOY_CACHE'])
      : undefined

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
    cluster: () =>
      (cluster ??= ServingCluster.connect(
        { kubeconfig: inputs.cluster.kubeconfig, kubeContext: inputs.cluster.kubeContext },
        log,
        { env },
      )),
  }
}
