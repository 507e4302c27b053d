// Telling GitHub what happened: the sticky PR comment and a deployment status. Both are extras:
// a token that may not write (fork PRs get a read-only one) or an API that refuses turns into a
// warning, never a failed deploy.
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { isPermissionDenied, type DeploymentState, type GitHubClient } from './client.js'
import { findSticky } from './comment.js'

/** Runs an optional GitHub call; on failure logs a warning and returns the one-line outcome. */
export async function bestEffort(log: Logger, what: string, fn: () => Promise<string>): Promise<string> {
  try {
    return await fn()
  } catch (err) {
    const why = isPermissionDenied(err)
      ? `the token may not do this (a fork PR's token is read-only; the job needs permissions: pull-requests: write / deployments: write): ${errorMessage(err)}`
      : errorMessage(err)
    log.warning(`${what} skipped: ${why}`)
    return `${what} skipped`
  }
}

/**
 * Edits the preview's comment (found by its marker) or, with `create`, posts it when there is none
 * yet; a removal only edits (it needs no new comment).
 */
export async function writeComment(
  github: GitHubClient,
  pr: number,
  name: string,
  body: string,
  options: { create: boolean; signal?: AbortSignal },
): Promise<string> {
  const existing = findSticky(await github.listIssueComments(pr, options.signal), name)
  if (existing) {
    await github.updateIssueComment(existing.id, body, options.signal)
    return `comment ${existing.id} updated`
  }
  if (!options.create) return 'no comment to update'
  const created = await github.createIssueComment(pr, body, options.signal)
  return `comment ${created.id} created`
}

/** A deployment for the ref with one status (success carries the URL). */
export async function reportDeployment(
  github: GitHubClient,
  d: {
    ref: string
    environment: string
    transient: boolean
    state: DeploymentState
    url?: string
    logUrl?: string
    description: string
  },
  signal?: AbortSignal,
): Promise<string> {
  const id = await github.createDeployment(
    { ref: d.ref, environment: d.environment, description: d.description, transient: d.transient },
    signal,
  )
  await github.createDeploymentStatus(
    id,
    { state: d.state, environmentUrl: d.url, logUrl: d.logUrl, description: d.description },
    signal,
  )
  return `deployment ${id} ${d.state} in ${d.environment}`
}

/** Marks the environment's latest deployment inactive: the environment no longer exists. */
export async function deactivateEnvironment(
  github: GitHubClient,
  environment: string,
  logUrl: string | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const [latest] = await github.listDeployments(environment, signal)
  if (latest === undefined) return `no deployment in ${environment}`
  await github.createDeploymentStatus(latest, { state: 'inactive', logUrl, description: 'preview removed' }, signal)
  return `deployment ${latest} inactive`
}
