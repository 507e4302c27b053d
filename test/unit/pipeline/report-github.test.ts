import { readRunContext } from '../../../src/github-context.js'
import { GitHubClient } from '../../../src/github/client.js'
import { parseInputs } from '../../../src/inputs.js'
import type { Services, StageContext } from '../../../src/pipeline/context.js'
import { RolloutError } from '../../../src/k8s/index.js'
import { checkPreviewOpen, failedPreview } from '../../../src/pipeline/preview-guard.js'
import { reportFailureToGitHub, reportRemovalToGitHub, reportToGitHub } from '../../../src/pipeline/report-github.js'
import { Report } from '../../../src/report/report.js'
import { DeployError } from '../../../src/util/errors.js'
import { UndiciTransport } from '../../../src/util/http.js'
import { MemoryLogger } from '../../support/memory-logger.js'
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

const CLOSED_GONE =
  'pull request #7 was closed while this deploy ran; its preview was deleted by the delete run: nothing was re-created'
const CLOSED_OTHER =
  'smoke test: 500; pull request #7 was closed meanwhile: the PR comment and deployment status are left to the delete run'

test.each<[string, boolean | undefined, boolean, boolean, string | undefined]>([
  // PR state, preview gone under the rollout → report to GitHub?, the failure restated
  ['open, the preview deleted by someone else: the deploy reports its failure', true, true, true, undefined],
  ['open, an ordinary failure', true, false, true, undefined],
  ['unreadable: reported as before (the read warned)', undefined, true, true, undefined],
  ['closed, the preview deleted under the rollout: the close is the story', false, true, false, CLOSED_GONE],
  ['closed, a failure of its own: kept, and the delete owns GitHub', false, false, false, CLOSED_OTHER],
])('a failed preview deploy: PR %s', (_case, open, gone, report, restated) => {
  expect(failedPreview({ pr: 7, open, gone, reason: 'smoke test: 500' })).toEqual(
    restated ? { report, restated } : { report },
  )
})

test('a failed deploy whose PR closed meanwhile: no "failed" comment or status, the failure restated', async () => {
  await reportToGitHub(context({ 'github-token': 'ghs_t' }))
  fake.pulls.set(7, 'closed')
  const ctx = context({ 'github-token': 'ghs_t' })
  ctx.state.failure = 'wait for ready: … was deleted: nothing is rolled back, and nothing re-created'
  ctx.state.failureCause = new RolloutError('… was deleted', 'gone', [])
  expect((await reportFailureToGitHub(ctx)).decision).toBe(
    'pull request #7 was closed meanwhile: comment and status left to the delete',
  )
  expect(ctx.state).toMatchObject({ previewClosed: true, failureRestated: CLOSED_GONE })
  expect(ctx.log.lines).toContain('the deploy failed with: … was deleted')
  expect(fake.comments.get(7)?.[0]?.body).toContain('is live')
  expect(fake.deployments.flatMap((d) => d.statuses.map((s) => s.state))).toEqual(['success'])
})

test('a failed deploy whose PR is still open reports the failure, whatever removed the preview', async () => {
  const ctx = context({ 'github-token': 'ghs_t' })
  ctx.state.failure = 'wait for ready: … was deleted'
  ctx.state.failureCause = new RolloutError('… was deleted', 'gone', [])
  await reportFailureToGitHub(ctx)
  expect(ctx.state.failureRestated).toBeUndefined()
  expect(fake.comments.get(7)?.[0]?.body).toContain('failed to deploy')
  expect(fake.deployments[0]?.statuses).toEqual([{ state: 'failure' }])
})

test('a PR that cannot be read (403): the failure is reported, with a warning', async () => {
  fake.pulls.set(7, 'closed')
  fake.deny.add('pulls')
  const ctx = context({ 'github-token': 'ghs_t' })
  ctx.state.failureCause = new DeployError('smoke test: 500')
  await reportFailureToGitHub(ctx)
  expect(ctx.state.failureRestated).toBeUndefined()
  expect(fake.comments.get(7)?.[0]?.body).toContain('failed to deploy')
  expect(ctx.log.lines.join('\n')).toMatch(/warning: cannot check that pull request #7 is still open: .*403/)
})

test('a refused promotion after a verified deploy: GitHub hears it is live, not "failed to deploy"', async () => {
  const ctx = context({ 'github-token': 'ghs_t' })
  ctx.state.promotionFailed = true
  ctx.state.failure = 'promote: the deployment stands, but alias "production" was not set on wine v1: 403'
  expect((await reportFailureToGitHub(ctx)).decision).toMatch(/^comment \d+ created; deployment \d+ success/)
  expect(
    fake.comments
      .get(7)!
      .map((c) => c.body)
      .join('\n'),
  ).not.toContain('failed to deploy')
  expect(fake.deployments.map((d) => d.statuses)).toEqual([
    [{ state: 'success', environment_url: 'http://wine-pr-7.example' }],
  ])
})
