// What the workflow run tells about itself (GITHUB_* variables and the event payload), read once.
// Outside GitHub Actions every field is simply absent.
import { readFileSync } from 'node:fs'

/** The parts of the triggering event the action acts on. */
export interface EventInfo {
  /** The pull request the event is about (pull_request, pull_request_target). */
  readonly prNumber: number | undefined
  /** The PR's state when the event fired: a deploy for a closed PR must not (re)create a preview. */
  readonly prState: 'open' | 'closed' | undefined
  /** The event's activity type: opened, synchronize, closed, a repository_dispatch type… */
  readonly action: string | undefined
  /** The commit to report a deployment for: the PR head, not the synthetic merge commit. */
  readonly headSha: string | undefined
}

export interface RunContext {
  readonly sha: string | undefined
  readonly ref: string | undefined
  readonly repository: string | undefined
  readonly eventName: string | undefined
  /** GITHUB_WORKFLOW_REF: owner/repo/.github/workflows/file.yml@ref, the workflow that ran. */
  readonly workflowRef: string | undefined
  readonly runId: string | undefined
  readonly runAttempt: string | undefined
  /** Link to this workflow run, for provenance annotations and the summary. */
  readonly runUrl: string | undefined
  /** REST API root (GITHUB_API_URL; differs on GHES). */
  readonly apiUrl: string
  readonly event: EventInfo
}

export function readRunContext(env: Readonly<Record<string, string | undefined>>): RunContext {
  const server = env['GITHUB_SERVER_URL'] || 'https://github.com'
  const repository = env['GITHUB_REPOSITORY'] || undefined
  const runId = env['GITHUB_RUN_ID']
  const attempt = env['GITHUB_RUN_ATTEMPT']
  const runUrl =
    repository && runId
      ? `${server}/${repository}/actions/runs/${runId}${attempt && attempt !== '1' ? `/attempts/${attempt}` : ''}`
      : undefined
  return Object.freeze({
    sha: env['GITHUB_SHA'] || undefined,
    ref: env['GITHUB_REF'] || undefined,
    repository,
    eventName: env['GITHUB_EVENT_NAME'] || undefined,
    workflowRef: env['GITHUB_WORKFLOW_REF'] || undefined,
    runId: runId || undefined,
    runAttempt: attempt || undefined,
    runUrl,
    apiUrl: (env['GITHUB_API_URL'] || 'https://api.github.com').replace(/\/+$/, ''),
    event: Object.freeze(parseEvent(readEventFile(env['GITHUB_EVENT_PATH']))),
  })
}

function readEventFile(path: string | undefined): unknown {
  if (!path) return undefined
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    // A missing or broken payload only means we know less about the event.
    return undefined
  }
}

/** The event facts from a webhook payload (pure; exported for tests). */
export function parseEvent(payload: unknown): EventInfo {
  const p = (isObject(payload) ? payload : {}) as Record<string, unknown>
  const pr = isObject(p['pull_request']) ? p['pull_request'] : undefined
  const number = pr?.['number'] ?? (pr ? p['number'] : undefined)
  const state = pr?.['state']
  const head = isObject(pr?.['head']) ? pr['head'] : undefined
  return {
    prNumber: typeof number === 'number' ? number : undefined,
    prState: state === 'open' || state === 'closed' ? state : undefined,
    action: typeof p['action'] === 'string' ? p['action'] : undefined,
    headSha: typeof head?.['sha'] === 'string' ? head['sha'] : undefined,
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
