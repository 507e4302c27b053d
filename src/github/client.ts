// A small client for the few GitHub REST endpoints the action uses: issue comments (the sticky
// PR comment), pull requests (is the PR still open?) and deployments with their statuses.
// The token goes in the Authorization header only; errors carry the path and GitHub's message.
import { DeployError, errorMessage } from '../util/errors.js'
import { HttpConnectionError, type HttpTransport } from '../util/http.js'
import { TRUST_VIA_NODE, connectionFailureMessage } from '../util/net-errors.js'

export interface IssueComment {
  readonly id: number
  readonly body: string
}

export type DeploymentState = 'success' | 'failure' | 'error' | 'inactive' | 'in_progress'

export interface GitHubClientOptions {
  /** REST API root, e.g. https://api.github.com (GITHUB_API_URL). */
  readonly apiUrl: string
  /** owner/repo */
  readonly repository: string
  readonly token: string
  readonly transport: HttpTransport
}

/** GitHub answered with an error status. */
export class GitHubApiError extends Error {
  override readonly name = 'GitHubApiError'
  constructor(
    readonly status: number,
    readonly what: string,
    readonly apiMessage: string,
  ) {
    super(`GitHub refused to ${what}: ${status}${apiMessage ? ` ${apiMessage}` : ''}`)
  }
}

/**
 * Whether an error means "this token may not do that" rather than a fault: 401/403/404 (GitHub
 * answers 404 for a repository the token cannot see). Fork PRs get a read-only token: 403
 * "Resource not accessible by integration". A 403 rate limit is not a permission problem.
 */
export function isPermissionDenied(err: unknown): boolean {
  if (!(err instanceof GitHubApiError)) return false
  if (err.status === 403 && /rate limit/i.test(err.apiMessage)) return false
  return err.status === 401 || err.status === 403 || err.status === 404
}

// Comments are paged 100 at a time; a PR with more than 1000 comments gets a new sticky comment.
const MAX_COMMENT_PAGES = 10

export class GitHubClient {
  private readonly base: string

  constructor(private readonly options: GitHubClientOptions) {
    this.base = `${options.apiUrl.replace(/\/+$/, '')}/repos/${options.repository}`
  }

  get repository(): string {
    return this.options.repository
  }

  async listIssueComments(issue: number, signal?: AbortSignal): Promise<IssueComment[]> {
    const all: IssueComment[] = []
    for (let page = 1; page <= MAX_COMMENT_PAGES; page++) {
      const batch = (await this.call(
        'GET',
        `/issues/${issue}/comments?per_page=100&page=${page}`,
        `list the comments of #${issue}`,
        undefined,
        signal,
      )) as { id: number; body?: string | null }[]
      all.push(...batch.map((c) => ({ id: c.id, body: c.body ?? '' })))
      if (batch.length < 100) break
    }
    return all
  }

  async createIssueComment(issue: number, body: string, signal?: AbortSignal): Promise<IssueComment> {
    const c = (await this.call('POST', `/issues/${issue}/comments`, `comment on #${issue}`, { body }, signal)) as {
      id: number
    }
    return { id: c.id, body }
  }

  async updateIssueComment(id: number, body: string, signal?: AbortSignal): Promise<void> {
    await this.call('PATCH', `/issues/comments/${id}`, `update comment ${id}`, { body }, signal)
  }

  async pullRequestState(pr: number, signal?: AbortSignal): Promise<'open' | 'closed'> {
    const p = (await this.call('GET', `/pulls/${pr}`, `read pull request #${pr}`, undefined, signal)) as {
      state?: string
    }
    return p.state === 'closed' ? 'closed' : 'open'
  }

  async createDeployment(
    d: { ref: string; environment: string; description: string; transient: boolean },
    signal?: AbortSignal,
  ): Promise<number> {
    const body = {
      ref: d.ref,
      environment: d.environment,
      description: d.description,
      // No merge of the default branch and no commit-status gate: the deploy already happened.
      auto_merge: false,
      required_contexts: [],
      transient_environment: d.transient,
      production_environment: false,
    }
    const res = (await this.call('POST', '/deployments', `create a deployment for ${d.environment}`, body, signal)) as {
      id?: number
      message?: string
    }
    // 202 (an auto-merge happened instead) carries no id; with auto_merge false it should not occur.
    if (typeof res.id !== 'number') throw new GitHubApiError(202, 'create a deployment', res.message ?? 'no id')
    return res.id
  }

  async createDeploymentStatus(
    id: number,
    s: { state: DeploymentState; environmentUrl?: string; logUrl?: string; description?: string },
    signal?: AbortSignal,
  ): Promise<void> {
    const body = {
      state: s.state,
      environment_url: s.environmentUrl,
      log_url: s.logUrl,
      description: s.description?.slice(0, 140),
    }
    await this.call('POST', `/deployments/${id}/statuses`, `set deployment ${id} to ${s.state}`, body, signal)
  }

  /** Deployment ids for an environment, newest first (one page). */
  async listDeployments(environment: string, signal?: AbortSignal): Promise<number[]> {
    const list = (await this.call(
      'GET',
      `/deployments?environment=${encodeURIComponent(environment)}&per_page=10`,
      `list the deployments of ${environment}`,
      undefined,
      signal,
    )) as { id: number }[]
    return list.map((d) => d.id)
  }

  private async call(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    what: string,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const res = await this.options.transport
      .request({
        method,
        url: this.base + path,
        headers: {
          accept: 'application/vnd.github+json',
          authorization: `Bearer ${this.options.token}`,
          'x-github-api-version': '2022-11-28',
          'user-agent': 'mlflow-k8s-deploy',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      })
      .catch((err: unknown) => {
        if (!(err instanceof HttpConnectionError)) throw err
        const server = `GitHub at ${this.options.apiUrl}`
        throw new DeployError(connectionFailureMessage(err, { what: server, trust: TRUST_VIA_NODE }))
      })
    const text = await res.text()
    let json: unknown
    try {
      json = text ? JSON.parse(text) : undefined
    } catch (err) {
      if (res.status < 300) throw new GitHubApiError(res.status, what, `not JSON: ${errorMessage(err)}`)
    }
    if (res.status >= 300) {
      const message = (json as { message?: unknown } | undefined)?.message
      throw new GitHubApiError(res.status, what, typeof message === 'string' ? message : text.slice(0, 200))
    }
    return json
  }
}
