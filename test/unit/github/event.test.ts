import { join } from 'node:path'
import { parseEvent, readRunContext, type EventInfo } from '../../../src/github-context.js'

const fixture = (name: string) => join(import.meta.dirname, '../../fixtures/events', `${name}.json`)
const HEAD = '1'.repeat(40)
const none = { prNumber: undefined, prState: undefined, headSha: undefined }

test.each<[string, string, EventInfo]>([
  ['push', 'push', { ...none, action: undefined }],
  ['workflow_dispatch', 'workflow_dispatch', { ...none, action: undefined }],
  ['repository_dispatch', 'repository_dispatch', { ...none, action: 'model-version-created' }],
  ['pull_request opened', 'pull_request-opened', { prNumber: 42, prState: 'open', action: 'opened', headSha: HEAD }],
  [
    'pull_request synchronize',
    'pull_request-synchronize',
    { prNumber: 42, prState: 'open', action: 'synchronize', headSha: HEAD },
  ],
  ['pull_request closed', 'pull_request-closed', { prNumber: 42, prState: 'closed', action: 'closed', headSha: HEAD }],
])('%s', (_c, file, expected) => {
  const run = readRunContext({ GITHUB_EVENT_PATH: fixture(file), GITHUB_EVENT_NAME: file.split('-')[0] })
  expect(run.event).toEqual(expected)
})

test.each<[string, unknown]>([
  ['no payload', undefined],
  ['not an object', [1, 2]],
  ['a number that is not a PR', { number: 7 }],
])('%s: nothing is known', (_c, payload) => {
  expect(parseEvent(payload)).toEqual({ ...none, action: undefined })
})

test('a missing or broken event file is no event, and GITHUB_API_URL defaults to github.com', () => {
  const run = readRunContext({ GITHUB_EVENT_PATH: '/nonexistent/event.json' })
  expect(run.event.prNumber).toBeUndefined()
  expect(run.apiUrl).toBe('https://api.github.com')
  expect(readRunContext({ GITHUB_API_URL: 'https://ghe.acme.io/api/v3/' }).apiUrl).toBe('https://ghe.acme.io/api/v3')
})
