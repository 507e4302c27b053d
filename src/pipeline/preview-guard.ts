// The race between a preview's deploy (on push / synchronize) and its delete (on `closed`).
//
// Rule: a preview exists only while its PR is open, and GitHub marks the PR closed before the
// `closed` workflow starts. So
//   1. a preview deploy whose event payload already says closed refuses to start;
//   2. right after its apply, the deploy reads the PR's state from the API; if closed, it deletes
//      the object it applied (pinned by uid, so a newer one is never touched) and fails.
// No orphan either way: if the re-check saw "open", the close came after our apply, so the delete
// run (started after the close) finds our object and removes it; if it saw "closed", we remove it
// ourselves. A delete that ran before our apply found nothing, but then the close also preceded
// our re-check, which sees it. Without a token that can read the PR, step 2 is skipped with a
// warning (a `concurrency` group per PR in the workflow then covers it).
import { DeployError, errorMessage } from '../util/errors.js'
import { need, type Stage, type StageContext } from './context.js'

/** Step 1: a deploy for a PR the event says is closed does nothing. */
export const checkPreviewOpen: Stage = async ({ inputs, services, state }) => {
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
export const confirmPreviewOpen: Stage = async (ctx) => {
  const { inputs, services, signal, state } = ctx
  const pr = inputs.preview.prNumber
  if (!inputs.preview.enabled || pr === undefined) return { decision: 'not a preview', skipped: true }
  const open = await pullRequestOpen(ctx, pr)
  if (open === undefined) return { decision: 'PR state unknown; not re-checked', skipped: true }
  if (open) return { decision: `pull request #${pr} is still open` }

  const applied = need(state.applied, 'the applied object')
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
