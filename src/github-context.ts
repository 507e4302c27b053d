// What the workflow run tells about itself (GITHUB_* variables), read once. Outside GitHub
// Actions every field is simply absent.

export interface RunContext {
  readonly sha: string | undefined
  readonly repository: string | undefined
  readonly eventName: string | undefined
  /** Link to this workflow run, for provenance annotations and the summary. */
  readonly runUrl: string | undefined
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
    repository,
    eventName: env['GITHUB_EVENT_NAME'] || undefined,
    runUrl,
  })
}
