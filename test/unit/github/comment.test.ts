import { commentMarker, failedBody, findSticky, liveBody, removedBody } from '../../../src/github/comment.js'

const facts = {
  name: 'wine-pr-42',
  namespace: 'previews',
  url: 'https://wine-pr-42.previews.example.com',
  modelName: 'wine-classifier',
  modelVersion: '3',
  digest: 'sha256:' + 'a'.repeat(64),
  revision: 'wine-pr-42-00002',
  smoke: 'passed in 41 ms',
  sha: 'f'.repeat(40),
  expiresAt: '2026-05-01T12:00:00.000Z',
  runUrl: 'https://github.com/acme/wine/actions/runs/9',
}

test.each<[string, { id: number; body: string }[], number | undefined]>([
  ['none', [], undefined],
  ['another bot', [{ id: 1, body: 'Deployed!' }], undefined],
  ['another preview', [{ id: 1, body: `${commentMarker('wine-pr-4')}\nx` }], undefined],
  [
    'ours',
    [
      { id: 1, body: 'hi' },
      { id: 2, body: `${commentMarker('wine-pr-42')}\n### x` },
    ],
    2,
  ],
  ['a quote of ours is not ours', [{ id: 3, body: `> ${commentMarker('wine-pr-42')}` }], undefined],
  [
    'the first of two',
    [
      { id: 4, body: commentMarker('wine-pr-42') },
      { id: 5, body: commentMarker('wine-pr-42') },
    ],
    4,
  ],
])('finding the sticky comment: %s', (_c, comments, id) => {
  expect(findSticky(comments, 'wine-pr-42')?.id).toBe(id)
})

test('the live comment: marker first, then the facts in one table', () => {
  const body = liveBody(facts)
  expect(body.split('\n')[0]).toBe('<!-- mlflow-k8s-deploy:wine-pr-42 -->')
  expect(body).toContain('| URL | https://wine-pr-42.previews.example.com |')
  expect(body).toContain('| Model | `wine-classifier` version 3 |')
  expect(body).toContain(`| Image digest | \`sha256:${'a'.repeat(64)}\` |`)
  expect(body).toContain('| Revision | `wine-pr-42-00002` |')
  expect(body).toContain('| Smoke test | passed in 41 ms |')
  expect(body).toContain('| Commit | `ffffffffffff` |')
  expect(body).toContain('| Expires | 2026-05-01T12:00:00.000Z |')
  expect(body).toContain('[workflow run](https://github.com/acme/wine/actions/runs/9)')
})

test('unknown facts leave no empty rows; pipes and newlines stay inside a cell', () => {
  const body = liveBody({ ...facts, url: undefined, revision: undefined, expiresAt: undefined, smoke: 'a|b\nc' })
  expect(body).not.toMatch(/\| (URL|Revision|Expires) \|/)
  expect(body).toContain('| Smoke test | a\\|b c |')
})

test('removed and failed comments keep the marker', () => {
  const removed = removedBody({ name: 'wine-pr-42', namespace: 'p', reason: 'The pull request was closed' })
  expect(removed).toMatch(/^<!-- mlflow-k8s-deploy:wine-pr-42 -->\n### Preview `wine-pr-42` was removed/)
  expect(findSticky([{ id: 1, body: removed }], 'wine-pr-42')?.id).toBe(1)
  expect(failedBody({ name: 'wine-pr-42', namespace: 'p', reason: 'smoke test: 500' })).toContain('failed to deploy')
})
