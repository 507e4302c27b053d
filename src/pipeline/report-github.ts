// The GitHub surfaces of a run: the sticky PR comment of a preview and a deployment status for
// the environment. Optional extras: every refusal is a warning, never a failed deploy.
import type { DeploymentState, GitHubClient } from '../github/client.js'
import { failedBody, liveBody, removedBody } from '../github/comment.js'
import { bestEffort, deactivateEnvironment, reportDeployment, writeComment } from '../github/surfaces.js'
import type { SmokeResult } from '../inference/smoke.js'
import type { Deployment } from '../k8s/index.js'
import { EXPIRES_ANNOTATION, type Manifest } from '../k8s/render.js'
import type { ModelDetails } from '../mlflow/index.js'
import type { StageContext, StageOutcome } from './context.js'
import type { PinnedImage } from './plan-image.js'
import { closedAfterFailure, pullRequestOpen } from './preview-guard.js'

/** What the GitHub surfaces say of a deploy: whatever the stages that ran found. */
export interface DeployFacts {
  readonly details?: ModelDetails
  readonly manifest?: Manifest
  readonly image?: PinnedImage
  readonly deployment?: Deployment
  readonly smoke?: SmokeResult
}

/** After a verified deploy: the comment says what is live; the deployment is `success` with the URL. */
export const reportToGitHub = (ctx: StageContext, facts: DeployFacts = {}): Promise<StageOutcome> =>
  withGitHub(ctx, async (github, pr) => {
    const { inputs, report, services, log, signal } = ctx
    const parts: string[] = []
    // A close during the wait: the delete run owns the comment now; "live" would be stale.
    if (pr !== undefined && (await pullRequestOpen(ctx, pr)) === false) {
      return `pull request #${pr} closed meanwhile: comment and status left to the delete`
    }
    if (pr !== undefined) {
      const annotations = facts.manifest?.metadata as { annotations?: Record<string, string> } | undefined
      const body = liveBody({
        name: inputs.cluster.name,
        namespace: inputs.cluster.namespace,
        url: report.outputs.url,
        modelName: facts.details?.model.name ?? report.outputs['model-name'],
        modelVersion: facts.details?.model.version ?? report.outputs['model-version'],
        digest: facts.image?.digest,
        revision: facts.deployment?.revision ?? report.outputs.revision,
        smoke: facts.smoke
          ? `passed in ${Math.round(facts.smoke.latencyMs)} ms`
          : inputs.flow.smokeTest
            ? 'not run'
            : 'off (smoke-test: false)',
        sha: services.run.event.headSha ?? services.run.sha,
        expiresAt: annotations?.annotations?.[EXPIRES_ANNOTATION],
        runUrl: services.run.runUrl,
      })
      parts.push(
        await bestEffort(log, 'PR comment', () =>
          writeComment(github, pr, inputs.cluster.name, body, { create: true, signal }),
        ),
      )
    }
    parts.push(await deploymentStatus(ctx, github, 'success', `${inputs.cluster.name} is live`))
    return parts.filter(Boolean).join('; ')
  })

/** On `action: delete`: the comment says the preview is gone; the environment goes inactive. */
export const reportRemovalToGitHub = (ctx: StageContext): Promise<StageOutcome> =>
  withGitHub(ctx, async (github, pr) => {
    const { inputs, services, log, signal } = ctx
    const parts: string[] = []
    const closed = services.run.event.prState === 'closed' || services.run.event.action === 'closed'
    if (pr !== undefined) {
      const body = removedBody({
        name: inputs.cluster.name,
        namespace: inputs.cluster.namespace,
        reason: closed ? 'The pull request was closed and its preview deleted' : 'The preview was deleted',
        runUrl: services.run.runUrl,
      })
      parts.push(
        await bestEffort(log, 'PR comment', () =>
          writeComment(github, pr, inputs.cluster.name, body, { create: false, signal }),
        ),
      )
    }
    const environment = inputs.github.environment
    if (environment) {
      parts.push(
        await bestEffort(log, 'deployment status', () =>
          deactivateEnvironment(github, environment, services.run.runUrl, signal),
        ),
      )
    }
    return parts.join('; ')
  })

/**
 * After a failed deploy (best effort): the comment and the deployment status say so, unless the
 * preview's PR is closed by now: the delete run owns them then (preview-guard, step 3).
 */
export async function reportFailureToGitHub(ctx: StageContext, facts: DeployFacts = {}): Promise<StageOutcome> {
  // Verified and serving, only the alias was refused: GitHub hears that it is live (the step
  // still fails, saying the alias was not set), not "failed to deploy".
  if (ctx.state.promotionFailed) return reportToGitHub(ctx, facts)
  const closed = await closedAfterFailure(ctx)
  if (closed) return { decision: `${closed}: comment and status left to the delete` }
  return reportFailure(ctx)
}

const reportFailure = (ctx: StageContext): Promise<StageOutcome> =>
  withGitHub(ctx, async (github, pr) => {
    const { inputs, state, services, log, signal } = ctx
    const parts: string[] = []
    const reason = state.failure ?? 'the deploy failed'
    if (pr !== undefined) {
      const body = failedBody({
        name: inputs.cluster.name,
        namespace: inputs.cluster.namespace,
        reason,
        runUrl: services.run.runUrl,
      })
      parts.push(
        await bestEffort(log, 'PR comment', () =>
          writeComment(github, pr, inputs.cluster.name, body, { create: true, signal }),
        ),
      )
    }
    parts.push(await deploymentStatus(ctx, github, 'failure', reason))
    return parts.filter(Boolean).join('; ')
  })

async function deploymentStatus(
  ctx: StageContext,
  github: GitHubClient,
  state: DeploymentState,
  description: string,
): Promise<string> {
  const { inputs, services, report, log, signal } = ctx
  const environment = inputs.github.environment
  const ref = services.run.event.headSha ?? services.run.sha ?? services.run.ref
  if (!environment) return ''
  if (!ref) return 'deployment status skipped: no commit to report it for'
  return bestEffort(log, 'deployment status', () =>
    reportDeployment(
      github,
      {
        ref,
        environment,
        transient: inputs.preview.enabled,
        state,
        url: state === 'success' ? report.outputs.url : undefined,
        logUrl: services.run.runUrl,
        description,
      },
      signal,
    ),
  )
}

/**
 * Runs `fn` when there is something to tell GitHub and a client to tell it with. `pr` is set
 * when the preview's comment is wanted.
 */
async function withGitHub(
  ctx: StageContext,
  fn: (github: GitHubClient, pr: number | undefined) => Promise<string>,
): Promise<StageOutcome> {
  const { inputs, services, log } = ctx
  const pr = inputs.preview.enabled && inputs.github.comment ? inputs.preview.prNumber : undefined
  if (pr === undefined && !inputs.github.environment) {
    return { decision: 'no PR comment or environment asked for', skipped: true }
  }
  const github = services.github()
  if (!github) {
    const why = inputs.github.token ? 'not in a GitHub Actions run (no GITHUB_REPOSITORY)' : 'no github-token'
    log.warning(`PR comment and deployment status skipped: ${why}`)
    return { decision: `skipped: ${why}`, skipped: true }
  }
  return { decision: (await fn(github, pr)) || 'nothing to report' }
}
