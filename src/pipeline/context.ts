// What every stage gets: the inputs, the outside systems, a logger, the cancel signal, the report
// and the run's state, which each stage fills in for the ones after it.
import type { RunContext } from '../github-context.js'
import type { Inputs } from '../inputs.js'
import type { ImageDeps, ImagePlan } from '../image/index.js'
import type { ClusterPlan, Deployment, ServingCluster, SmokeResult } from '../k8s/index.js'
import type { Manifest } from '../k8s/render.js'
import type { Applied } from '../k8s/rollout.js'
import type { Mlflow, ModelCache, ModelDetails } from '../mlflow/index.js'
import type { Report } from '../report/report.js'
import type { GitHubClient } from '../github/client.js'
import type { Budget } from '../util/clock.js'
import type { Logger } from '../util/logger.js'

/** The outside systems, created on first use (a delete never talks to MLflow or a registry). */
export interface Services {
  mlflow(): Mlflow
  images(): ImageDeps
  cluster(): ServingCluster
  modelCache(): ModelCache | undefined
  /** The GitHub REST client; undefined without a github-token or outside a repository's run. */
  github(): GitHubClient | undefined
  /** Wall-clock time in ms since the epoch (preview expiry, sweep decisions). */
  now(): number
  /** Scratch space for downloads and build contexts (RUNNER_TEMP on a runner). */
  readonly workDir: string
  readonly run: RunContext
}

export interface RunState {
  details?: ModelDetails
  plan?: ImagePlan
  /** The image to deploy, pinned by digest. */
  image?: { readonly ref: string; readonly digest: string }
  manifest?: Manifest
  /** False while the manifest names a planned image that is not built yet. */
  manifestImageBuilt?: boolean
  /** What the cluster said of the manifest without changing anything (plan). */
  clusterPlan?: ClusterPlan
  applied?: Applied
  /** The one deadline of the rollout (timeout), started at the apply. */
  budget?: Budget
  deployment?: Deployment
  smoke?: SmokeResult
  /** Why the deploy failed, for the GitHub surfaces told about it afterwards. */
  failure?: string
  /** The error the failed stage threw (the failure hook tells a preview deleted under it apart). */
  failureCause?: unknown
  /** The failure hook's plainer account of the failure; the run then fails with it. */
  failureRestated?: string
  /** The preview's PR turned out closed: the deploy refused or removed what it applied. */
  previewClosed?: boolean
  /** The deploy was verified and serves; only setting the MLflow alias failed. */
  promotionFailed?: boolean
}

export interface StageContext {
  readonly inputs: Inputs
  readonly services: Services
  readonly log: Logger
  readonly signal: AbortSignal
  readonly report: Report
  readonly state: RunState
}

export interface StageOutcome {
  /** One line: what the stage decided or found. */
  readonly decision: string
  readonly skipped?: boolean
}

export type Stage = (ctx: StageContext) => Promise<StageOutcome>

/** The state a stage needs from an earlier one; missing means the pipeline is wired wrong. */
export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`internal: ${what} is not known at this stage`)
  return value
}
