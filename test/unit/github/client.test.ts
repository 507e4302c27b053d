import { GitHubApiError, GitHubClient, isPermissionDenied } from '../../../src/github/client.js'
import { UndiciTransport } from '../../../src/util/http.js'
import { FakeGitHub } from '../../integration/github/fake-github.js'

test.each<[string, unknown, boolean]>([
  ['fork PR token', new GitHubApiError(403, 'comment', 'Resource not accessible by integration'), true],
  ['bad credentials', new GitHubApiError(401, 'comment', 'Bad credentials'), true],
  ['repository not visible', new GitHubApiError(404, 'comment', 'Not Found'), true],
  ['rate limited', new GitHubApiError(403, 'comment', 'API rate limit exceeded for installation'), false],
  ['validation', new GitHubApiError(422, 'deploy', 'Validation Failed'), false],
  ['server error', new GitHubApiError(502, 'comment', 'Bad Gateway'), false],
  ['not an API error', new Error('ECONNREFUSED'), false],
])('permission denied? %s', (_c, err, expected) => expect(isPermissionDenied(err)).toBe(expected))

describe('against a local fake', () => {
  const fake = new FakeGitHub('acme/wine', 'ghs_secret')
  let client: GitHubClient
  beforeAll(async () => {
    const apiUrl = await fake.start()
    client = new GitHubClient({
      apiUrl,
      repository: 'acme/wine',
      token: 'ghs_secret',
      transport: new UndiciTransport({ retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1, budgetMs: 1 } }),
    })
  })
  afterAll(() => fake.stop())

  test('lists every page of comments, creates and updates', async () => {
    fake.comments.set(
      7,
      Array.from({ length: 230 }, (_, i) => ({ id: i + 1, body: `c${i}` })),
    )
    expect(await client.listIssueComments(7)).toHaveLength(230)
    expect(fake.requests.filter((r) => r === 'GET /repos/acme/wine/issues/7/comments')).toHaveLength(3)
    const c = await client.createIssueComment(7, 'hello')
    await client.updateIssueComment(c.id, 'bye')
    expect(fake.comments.get(7)?.at(-1)).toEqual({ id: c.id, body: 'bye' })
  })

  test('deployments and statuses; errors carry the status and message but never the token', async () => {
    const id = await client.createDeployment({
      ref: 'abc',
      environment: 'preview-pr-7',
      description: 'd',
      transient: true,
    })
    await client.createDeploymentStatus(id, { state: 'success', environmentUrl: 'http://x' })
    expect(await client.listDeployments('preview-pr-7')).toEqual([id])
    fake.deny.add('comments')
    const err = await client.createIssueComment(7, 'x').catch((e: unknown) => e)
    expect(isPermissionDenied(err)).toBe(true)
    expect(String(err)).toBe(
      'GitHubApiError: GitHub refused to comment on #7: 403 Resource not accessible by integration',
    )
    expect(String(err)).not.toContain('ghs_secret')
  })
})

test('no answer from GitHub is worded once, by util/net-errors, and never shows the token', async () => {
  const client = new GitHubClient({
    apiUrl: 'http://127.0.0.1:9',
    repository: 'acme/wine',
    token: 'ghs_secret',
    transport: new UndiciTransport({ retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1, budgetMs: 1 } }),
  })
  const err = (await client.pullRequestState(7).catch((e: unknown) => e)) as Error
  expect(isPermissionDenied(err)).toBe(false)
  expect(err.message).toBe(
    'cannot reach GitHub at http://127.0.0.1:9: ECONNREFUSED, connection refused (is the server up, is the port right?)',
  )
})
