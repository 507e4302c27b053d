// The race between a preview's deploy (on push / synchronize) and its delete (on `closed`).
//
// Rule: a preview exists only while its PR is open, and GitHub marks the PR closed before the
// `closed` workflow starts. So
//   1. a preview deploy whose event payload already says closed refuses to start;
//   2. right after its apply, the deploy reads the PR's state from the API; if closed, it deletes
//      the object it applied (pinned by uid, so a newer one is never touched) and fails;
//   3. a deploy that fails later (the delete removed the preview under its wait or smoke test,
//      and the rollback, pinned by uid, re-created nothing) reads the PR again: if closed, it
//      leaves the comment and the deployment status to the delete run and says what happened.
// No orphan either way: if the re-check saw "open", the close came after our apply, so the delete
// run (started after the close) finds our object and removes it; if it saw "closed", we remove it
// ourselves. A delete that ran before our apply found nothing, but then the close also preceded
// our re-check, which sees it. Without a token that can read the PR, steps 2 and 3 are skipped
// with a warning (a `concurrency` group per PR in the workflow then covers it).
import { RolloutError } from '../k8s/index.js'
import { DeployError, errorMessage } from '../util/errors.js'
import type { AppliedResult } from './apply.js'
import type { Stage, StageContext, StageOutcome } from './context.js'

/** Step 1: a deploy for a PR the event says is closed does nothing. */
export async function checkPreviewOpen({ inputs, services, state }: StageContext): Promise<StageOutcome> {
  const pr = inputs.preview.prNumber
  if (!inputs.preview.enabled || pr === undefined) return { decision: 'not a preview', skipped: true }
  const event = services.run.event
  if (event.prNumber === pr && (event.prState === 'closed' || event.action === 'closed')) {
    state.previewClosed = true
    throw new DeployError(
      `pull request #${pr} is closed: no preview is deployed for it (on pull_request closed, use action: delete)`,
    )
  }
  return { decision: `preview of pull request #${pr}` }
}

/** Step 2: after the apply, the PR must still be open, or the object just applied goes again. */
export const confirmPreviewOpen: Stage<Pick<AppliedResult, 'applied'>> = async (ctx, { applied }) => {
  const { inputs, services, signal, state } = ctx
  const pr = inputs.preview.prNumber
  if (!inputs.preview.enabled || pr === undefined) return { decision: 'not a preview', skipped: true }
  const open = await pullRequestOpen(ctx, pr)
  if (open === undefined) return { decision: 'PR state unknown; not re-checked', skipped: true }
  if (open) return { decision: `pull request #${pr} is still open` }

  const { target, namespace, name } = inputs.cluster
  await services
    .cluster()
    .remove(
      { target, namespace, name },
      { timeoutMs: inputs.flow.timeoutMs, uid: applied.object.metadata?.uid, signal },
    )
  state.previewClosed = true
  throw new DeployError(
    `pull request #${pr} was closed while this deploy ran: the preview it applied was removed again`,
  )
}

/** The PR's state from the API: true when open, undefined when it cannot be read (warned). */
export async function pullRequestOpen(ctx: StageContext, pr: number): Promise<boolean | undefined> {
  const github = ctx.services.github()
  if (!github) {
    ctx.log.warning(
      `cannot check that pull request #${pr} is still open (no github-token): a delete racing this deploy could leave the preview behind`,
    )
    return undefined
  }
  try {
    return (await github.pullRequestState(pr, ctx.signal)) === 'open'
  } catch (err) {
    ctx.log.warning(`cannot check that pull request #${pr} is still open: ${errorMessage(err)}`)
    return undefined
  }
}

/**
 * Step 3, after a failed preview deploy: is the PR closed now? Then the failure is recorded as the
 * close's doing (state.previewClosed, state.failureRestated) and the reason returned, else
 * undefined. Without a client nothing is read: nothing would be reported to GitHub either.
 */
export async function closedAfterFailure(ctx: StageContext): Promise<string | undefined> {
  const { inputs, services, state } = ctx
  const pr = inputs.preview.prNumber
  if (!inputs.preview.enabled || pr === undefined) return undefined
  if (state.previewClosed) return `pull request #${pr} is closed`
  if (!services.github()) return undefined
  const cause = state.failureCause
  const gone = cause instanceof RolloutError && cause.outcome === 'gone'
  const seen = failedPreview({ pr, open: await pullRequestOpen(ctx, pr), gone, reason: errorMessage(cause) })
  if (seen.report) return undefined
  // The run fails with the plainer account; the evidence stays in the log.
  ctx.log.info(`the deploy failed with: ${errorMessage(cause)}`)
  state.previewClosed = true
  state.failureRestated = seen.restated
  return `pull request #${pr} was closed meanwhile`
}

/**
 * A failed preview deploy, once its PR's state is read (`open` undefined: unreadable); pure.
 * Open or unknown: the failure is the deploy's own, reported as such. Closed: the delete run owns
 * the comment and the environment (a "failed to deploy" over its "removed", or a failure status
 * after its inactive, would contradict it), and the failure says so; when the failure was the
 * preview deleted under the rollout, the close is the whole story.
 */
export function failedPreview(f: { pr: number; open: boolean | undefined; gone: boolean; reason: string }): {
  report: boolean
  restated?: string
} {
  if (f.open !== false) return { report: true }
  if (f.gone) {
    return {
      report: false,
      restated: `pull request #${f.pr} was closed while this deploy ran; its preview was deleted by the delete run: nothing was re-created`,
    }
  }
  return {
    report: false,
    restated: `${f.reason}; pull request #${f.pr} was closed meanwhile: the PR comment and deployment status are left to the delete run`,
  }
}
