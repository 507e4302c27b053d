// What every stage gets: the inputs, the outside systems, a logger, the cancel signal, the report
// and the run's flags. What a stage finds for the stages after it is its typed result, handed on
// by the stage table (run.ts): a stage says what it needs, and the compiler checks that an earlier
// stage gives it.
import type { RunContext } from '../github-context.js'
import type { Inputs } from '../inputs.js'
import type { ImageDeps } from '../image/index.js'
import type { Cosign } from '../image/signing.js'
import type { ServingCluster } from '../k8s/index.js'
import type { Mlflow, ModelCache } from '../mlflow/index.js'
import type { Report } from '../report/report.js'
import type { GitHubClient } from '../github/client.js'
import type { Logger } from '../util/logger.js'

/** The outside systems, created on first use (a delete never talks to MLflow or a registry). */
export interface Services {
  mlflow(): Mlflow
  images(): ImageDeps
  /** cosign, for sign and verify-signature. */
  cosign(): Cosign
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

/**
 * What the run learns about itself on the way, for the failure hook (report-github.ts): never a
 * stage's result, which is typed and handed on by the stage table.
 */
export interface RunState {
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

/**
 * A stage: takes the results of earlier stages it needs (`In`) and returns its decision together
 * with its own results (`Out`, named fields), which the stages after it can take in turn.
 */
export type Stage<In extends object = object, Out extends object = object> = (
  ctx: StageContext,
  results: In,
) => Promise<StageOutcome & Out>
