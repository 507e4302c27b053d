import { readRunContext } from '../../../src/github-context.js'
import { GitHubClient } from '../../../src/github/client.js'
import { parseInputs } from '../../../src/inputs.js'
import type { Services, StageContext } from '../../../src/pipeline/context.js'
import { checkPreviewOpen } from '../../../src/pipeline/preview-guard.js'
import { reportFailureToGitHub, reportRemovalToGitHub, reportToGitHub } from '../../../src/pipeline/report-github.js'
import { Report } from '../../../src/report/report.js'
import { UndiciTransport } from '../../../src/util/http.js'
import { MemoryLogger } from '../../../src/util/logger.js'
import { FakeGitHub } from '../../integration/github/fake-github.js'

const fake = new FakeGitHub('acme/wine', 'ghs_t')
let apiUrl: string
beforeAll(async () => (apiUrl = await fake.start()))
afterAll(() => fake.stop())
beforeEach(() => {
  fake.comments.clear()
  fake.deployments.length = 0
  fake.deny.clear()
  fake.pulls.set(7, 'open')
})

function context(inputs: Record<string, string>, eventPath?: string): StageContext & { log: MemoryLogger } {
  const env = {
    GITHUB_REPOSITORY: 'acme/wine',
    GITHUB_SHA: 'abc',
    GITHUB_API_URL: apiUrl,
    GITHUB_EVENT_PATH: eventPath,
  }
  const all: Record<string, string> = {
    'model-uri': 'models:/wine/1',
    'tracking-uri': 'http://mlflow',
    'image-repository': 'r.example/wine',
    preview: 'true',
    'pr-number': '7',
    ...inputs,
  }
  const parsed = parseInputs({ get: (n) => all[n] ?? '', env, mask: () => undefined })
  const run = readRunContext(env)
  const github = parsed.github.token
    ? new GitHubClient({
        apiUrl,
        repository: 'acme/wine',
        token: parsed.github.token,
        transport: new UndiciTransport(),
      })
    : undefined
  const services = { run, github: () => github, now: () => 0 } as unknown as Services
  const report = new Report()
  report.set('url', 'http://wine-pr-7.example')
  return { inputs: parsed, services, log: new MemoryLogger(), signal: new AbortController().signal, report, state: {} }
}

test('no token: skipped with a warning, never a failure', async () => {
  const ctx = context({})
  expect(await reportToGitHub(ctx)).toEqual({ decision: 'skipped: no github-token', skipped: true })
  expect(ctx.log.lines).toContain('warning: PR comment and deployment status skipped: no github-token')
})

test('one comment, created then updated in place; a success deployment with the URL', async () => {
  expect((await reportToGitHub(context({ 'github-token': 'ghs_t' }))).decision).toMatch(
    /^comment \d+ created; deployment \d+ success in preview-pr-7$/,
  )
  expect((await reportToGitHub(context({ 'github-token': 'ghs_t' }))).decision).toMatch(/^comment \d+ updated/)
  expect(fake.comments.get(7)).toHaveLength(1)
  expect(fake.deployments.map((d) => d.statuses)).toEqual([
    [{ state: 'success', environment_url: 'http://wine-pr-7.example' }],
    [{ state: 'success', environment_url: 'http://wine-pr-7.example' }],
  ])
})

test('a token that may not write (fork PR): warnings, the stage still succeeds', async () => {
  fake.deny.add('comments').add('deployments')
  const ctx = context({ 'github-token': 'ghs_t' })
  expect((await reportToGitHub(ctx)).decision).toBe('PR comment skipped; deployment status skipped')
  expect(ctx.log.lines.filter((l) => l.startsWith('warning:')).join('\n')).toMatch(
    /PR comment skipped: the token may not do this .*403 Resource not accessible by integration/,
  )
  expect(ctx.log.lines.join('\n')).not.toContain('ghs_t')
})

test('delete: the comment says removed and the environment goes inactive', async () => {
  await reportToGitHub(context({ 'github-token': 'ghs_t' }))
  const out = await reportRemovalToGitHub(context({ 'github-token': 'ghs_t', action: 'delete' }))
  expect(out.decision).toMatch(/comment \d+ updated; deployment \d+ inactive/)
  expect(fake.comments.get(7)?.[0]?.body).toContain('was removed')
  expect(fake.deployments[0]?.statuses.at(-1)?.state).toBe('inactive')
})

test('a failure is reported, unless the PR was closed (the delete owns the comment then)', async () => {
  const ctx = context({ 'github-token': 'ghs_t' })
  ctx.state.failure = 'smoke test: 500'
  await reportFailureToGitHub(ctx)
  expect(fake.comments.get(7)?.[0]?.body).toContain('failed to deploy')
  expect(fake.deployments[0]?.statuses).toEqual([{ state: 'failure' }])
  const closed = context({ 'github-token': 'ghs_t' })
  closed.state.previewClosed = true
  expect((await reportFailureToGitHub(closed)).decision).toContain('left to the delete')
})

test('a deploy on a closed pull_request event refuses before doing anything', async () => {
  const ctx = context({}, new URL('../../fixtures/events/pull_request-closed.json', import.meta.url).pathname)
  const ctx42 = context(
    { 'pr-number': '42' },
    new URL('../../fixtures/events/pull_request-closed.json', import.meta.url).pathname,
  )
  expect((await checkPreviewOpen(ctx)).decision).toBe('preview of pull request #7')
  await expect(checkPreviewOpen(ctx42)).rejects.toThrow('pull request #42 is closed: no preview is deployed')
  expect(ctx42.state.previewClosed).toBe(true)
})
