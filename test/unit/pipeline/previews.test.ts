import { previewSelector, sweepDecision } from '../../../src/pipeline/cleanup-previews.js'
import { renderServingManifest, repositoryLabel } from '../../../src/k8s/render.js'

const NOW = Date.parse('2026-05-01T12:00:00Z')
const H = 3_600_000
const obj = (created: string, expires?: string) => ({
  metadata: {
    name: 'p',
    creationTimestamp: created,
    annotations: (expires ? { 'mlflow-k8s-deploy/expires-at': expires } : {}) as Record<string, string>,
  },
})

test.each<[string, ReturnType<typeof obj>, number | undefined, boolean, string]>([
  ['expired', obj('2026-04-30T00:00:00Z', '2026-05-01T11:59:59Z'), undefined, true, 'expired at'],
  ['expires exactly now', obj('2026-04-30T00:00:00Z', '2026-05-01T12:00:00Z'), undefined, true, 'expired'],
  ['not yet expired', obj('2026-04-30T00:00:00Z', '2026-05-01T13:00:00Z'), undefined, false, 'expires at'],
  ['no TTL, no age limit', obj('2025-01-01T00:00:00Z'), undefined, false, 'no expiry'],
  ['no TTL, older than the limit', obj('2026-04-20T12:00:00Z'), 7 * 24 * H, true, 'created'],
  ['no TTL, younger than the limit', obj('2026-04-30T12:00:00Z'), 7 * 24 * H, false, 'no expiry'],
  ['future TTL but older than the limit', obj('2026-04-01T00:00:00Z', '2026-06-01T00:00:00Z'), 24 * H, true, 'created'],
  ['unreadable expiry is kept', obj('2026-04-30T00:00:00Z', 'tomorrow'), undefined, false, 'unreadable expiry'],
  ['unreadable expiry, too old', obj('2026-01-01T00:00:00Z', 'tomorrow'), 24 * H, true, 'created'],
])('%s', (_c, object, olderThan, remove, reason) => {
  const d = sweepDecision(object, NOW, olderThan)
  expect(d.remove).toBe(remove)
  expect(d.reason).toContain(reason)
})

test.each<[string, string]>([
  ['acme/wine', 'acme.wine'],
  ['Acme-Labs/Wine_Models.v2', 'acme-labs.wine_models.v2'],
  ['acme/.github', 'acme..github'],
])('repository label %s → %s', (repo, label) => expect(repositoryLabel(repo)).toBe(label))

test.each(['acme/wine-', 'a-very-long-organisation-name-here/' + 'r'.repeat(80), 'acme/repo_'])(
  'a repository that does not fit a label value is shortened and hashed: %s',
  (repo) => {
    const label = repositoryLabel(repo)
    expect(label).toMatch(/^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/)
    expect(label).not.toBe(repositoryLabel(repo + 'x'))
  },
)

test('the sweep selects managed previews of this repository only', () => {
  expect(previewSelector('acme/wine')).toBe(
    'app.kubernetes.io/managed-by=mlflow-k8s-deploy,mlflow-k8s-deploy/preview=true,mlflow-k8s-deploy/repository=acme.wine',
  )
})

test('a preview renders its labels, the full repository and the expiry; user labels cannot override them', () => {
  const m = renderServingManifest(
    {
      name: 'wine-pr-7',
      namespace: 'deploy',
      modelUri: 'models:/wine/1',
      image: 'r/wine@sha256:' + 'a'.repeat(64),
      preview: { pr: 7, repository: 'acme/wine', expiresAt: '2026-05-02T12:00:00.000Z' },
    },
    {
      shape: 'knative',
      env: [],
      labels: { 'mlflow-k8s-deploy/pr': '99', team: 'ml' },
      annotations: {},
      resources: undefined,
      minScale: undefined,
      maxScale: undefined,
    },
  ) as unknown as { metadata: { labels: Record<string, string>; annotations: Record<string, string> } }
  expect(m.metadata.labels).toMatchObject({
    'mlflow-k8s-deploy/preview': 'true',
    'mlflow-k8s-deploy/pr': '7',
    'mlflow-k8s-deploy/repository': 'acme.wine',
    team: 'ml',
  })
  expect(m.metadata.annotations).toMatchObject({
    'mlflow-k8s-deploy/repository': 'acme/wine',
    'mlflow-k8s-deploy/expires-at': '2026-05-02T12:00:00.000Z',
  })
})
