// Pull-request previews through the bundled action, against the rig's apiserver and a local fake
// of the GitHub REST API: the sticky comment, deployment statuses, a token that may not write,
// the deploy/delete race rule, and the TTL sweep of action: cleanup.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KNATIVE_SERVICE } from '../../../src/k8s/kube.js'
import { ServingCluster } from '../../../src/k8s/index.js'
import { MemoryLogger } from '../../../src/util/logger.js'
import { rigInputs, runAction, type ActionRun } from '../action/run-action.js'
import { rigEnv } from '../rig-env.js'
import { FakeGitHub } from './fake-github.js'

const REPO = 'acme/wine-models'
const TOKEN = 'ghs_fake_preview_token'
const PR = 901
const NAME = `gh-wine-pr-${PR}`
const fake = new FakeGitHub(REPO, TOKEN)
const dir = mkdtempSync(join(tmpdir(), 'gh-events-'))
let apiUrl: string
let cluster: ServingCluster

function event(action: string, state: 'open' | 'closed'): string {
  const path = join(dir, `${action}.json`)
  const pull_request = { number: PR, state, head: { sha: 'a'.repeat(40) } }
  writeFileSync(path, JSON.stringify({ action, number: PR, pull_request }))
  return path
}

function github(eventPath: string): Record<string, string> {
  return {
    GITHUB_API_URL: apiUrl,
    GITHUB_REPOSITORY: REPO,
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_SHA: 'b'.repeat(40),
    GITHUB_REF: `refs/pull/${PR}/merge`,
    GITHUB_RUN_ID: '77',
  }
}

const preview = (version: string, extra: Record<string, string> = {}) => ({
  ...rigInputs(),
  'model-uri': `models:/${rigEnv('FIXTURE_MODEL')}/${version}`,
  name: 'gh-wine',
  preview: 'true',
  'pr-number': String(PR),
  'preview-ttl': '2h',
  'github-token': TOKEN,
  ...extra,
})

function expectSuccess(run: ActionRun): void {
  if (run.status !== 0)
    throw new Error(`action failed (${run.status}): ${run.errors.join(' | ') || run.stdout.slice(-2000)}`)
}

const get = (name: string) => cluster.kube.get(KNATIVE_SERVICE, 'deploy', name)

beforeAll(async () => {
  apiUrl = await fake.start()
  fake.pulls.set(PR, 'open')
  cluster = ServingCluster.connect(
    { kubeconfig: { path: rigEnv('KUBECONFIG_DEPLOYER') }, kubeContext: undefined },
    new MemoryLogger(),
  )
})

afterAll(async () => {
  await runAction({ ...rigInputs(), 'model-uri': 'models:/x/1', action: 'delete', name: NAME })
  await fake.stop()
})

describe('a preview: create, update in place, fork token, race, delete', () => {
  let first: ActionRun
  test('create: labelled object with an expiry, one sticky comment, a success deployment', async () => {
    const before = Date.now()
    first = await runAction(preview('1'), github(event('opened', 'open')))
    expectSuccess(first)
    expect(first.outputs['name']).toBe(NAME)
    const object = await get(NAME)
    expect(object?.metadata?.labels).toMatchObject({
      'mlflow-k8s-deploy/preview': 'true',
      'mlflow-k8s-deploy/pr': String(PR),
      'mlflow-k8s-deploy/repository': 'acme.wine-models',
    })
    const expires = Date.parse(object?.metadata?.annotations?.['mlflow-k8s-deploy/expires-at'] ?? '')
    expect(expires - before).toBeGreaterThan(2 * 3_600_000 - 60_000)
    expect(expires - before).toBeLessThan(2 * 3_600_000 + 300_000)
    const comments = fake.comments.get(PR)!
    expect(comments).toHaveLength(1)
    expect(comments[0]!.body).toContain(`<!-- mlflow-k8s-deploy:${NAME} -->`)
    expect(comments[0]!.body).toContain(`| URL | ${first.outputs['url']} |`)
    expect(comments[0]!.body).toContain('version 1')
    expect(comments[0]!.body).toContain(first.outputs['digest'])
    expect(comments[0]!.body).toMatch(/\| Smoke test \| passed in \d+ ms \|/)
    expect(fake.deployments).toEqual([
      {
        id: expect.any(Number),
        ref: 'a'.repeat(40),
        environment: `preview-pr-${PR}`,
        transient: true,
        statuses: [{ state: 'success', environment_url: first.outputs['url'] }],
      },
    ])
    // The runner masks it (::add-mask::); nothing else may print it.
    expect(first.stdout.replace(`::add-mask::${TOKEN}`, '')).not.toContain(TOKEN)
  })

  test('update (v2 on synchronize): the same comment edited in place', async () => {
    const id = fake.comments.get(PR)![0]!.id
    const v2 = await runAction(preview('2'), github(event('synchronize', 'open')))
    expectSuccess(v2)
    expect(fake.comments.get(PR)).toEqual([{ id, body: expect.stringContaining('version 2') }])
    expect(fake.comments.get(PR)![0]!.body).toContain(v2.outputs['revision'])
    expect(fake.deployments).toHaveLength(2)
    expect(fake.requests.filter((r) => r.startsWith('POST') && r.endsWith('/comments'))).toHaveLength(1)
  })

  test('a token that may not write (fork PR): the deploy succeeds with a warning', async () => {
    fake.deny.add('comments').add('deployments')
    try {
      const run = await runAction(preview('2'), github(event('synchronize', 'open')))
      expectSuccess(run)
      expect(run.stdout).toMatch(/::warning::PR comment skipped: the token may not do this.*403/)
      expect(run.stdout).toMatch(/::warning::deployment status skipped: .*403/)
      expect(await get(NAME)).toBeDefined()
    } finally {
      fake.deny.clear()
    }
  })

  test('race: a deploy whose payload says closed refuses before anything is built or applied', async () => {
    const other = `gh-wine-pr-${PR + 1}`
    const run = await runAction(
      preview('1', { 'pr-number': String(PR + 1) }),
      github(
        (() => {
          const p = join(dir, 'closed-other.json')
          writeFileSync(
            p,
            JSON.stringify({ action: 'closed', number: PR + 1, pull_request: { number: PR + 1, state: 'closed' } }),
          )
          return p
        })(),
      ),
    )
    expect(run.status).not.toBe(0)
    expect(run.errors.join('\n')).toContain(`pull request #${PR + 1} is closed: no preview is deployed`)
    expect(await get(other)).toBeUndefined()
    expect(fake.comments.get(PR + 1)).toBeUndefined()
  })

  test('race: the PR closes while the deploy runs → the deploy removes what it applied', async () => {
    // The close happened before the re-check after apply (the event still says synchronize).
    fake.pulls.set(PR, 'closed')
    const before = (await get(NAME))?.metadata?.uid
    expect(before).toBeDefined()
    const run = await runAction(preview('1'), github(event('synchronize', 'open')))
    expect(run.status).not.toBe(0)
    expect(run.errors.join('\n')).toContain(`pull request #${PR} was closed while this deploy ran`)
    expect(await get(NAME)).toBeUndefined()
    // The delete run owns the comment: the failed deploy did not write "failed" over it.
    expect(fake.comments.get(PR)![0]!.body).toContain('is live')
  })

  test('delete on closed: idempotent, the comment says removed, the environment goes inactive', async () => {
    const run = await runAction(
      {
        ...rigInputs(),
        'model-uri': 'models:/x/1',
        action: 'delete',
        name: 'gh-wine',
        preview: 'true',
        'github-token': TOKEN,
      },
      github(event('closed', 'closed')),
    )
    expectSuccess(run)
    expect(fake.comments.get(PR)).toHaveLength(1)
    expect(fake.comments.get(PR)![0]!.body).toContain(`Preview \`${NAME}\` was removed`)
    expect(fake.deployments.at(-1)!.statuses.at(-1)!.state).toBe('inactive')
  })
})

describe('action: cleanup sweeps expired previews of this repository only', () => {
  const names = ['gh-sweep-expired', 'gh-sweep-fresh', 'gh-sweep-other-repo', 'gh-sweep-no-ttl']
  const now = Date.now()
  const manifest = (name: string, repo: string, expiresAt?: string) => ({
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: 'deploy',
      labels: {
        'app.kubernetes.io/managed-by': 'mlflow-k8s-deploy',
        'mlflow-k8s-deploy/preview': 'true',
        'mlflow-k8s-deploy/pr': '5',
        'mlflow-k8s-deploy/repository': repo,
      },
      annotations: (expiresAt ? { 'mlflow-k8s-deploy/expires-at': expiresAt } : {}) as Record<string, string>,
    },
    spec: { template: { spec: { containers: [{ image: `${rigEnv('REGISTRY')}/gh-none:never`, name: 'mlserver' }] } } },
  })

  afterAll(async () => {
    for (const name of names)
      await cluster.remove({ target: 'knative', namespace: 'deploy', name }, { timeoutMs: 60_000 })
  })

  test('expired goes; fresh, no-TTL and another repository stay; cleanup-older-than takes the rest', async () => {
    await cluster.apply(manifest(names[0]!, 'acme.wine-models', new Date(now - 60_000).toISOString()))
    await cluster.apply(manifest(names[1]!, 'acme.wine-models', new Date(now + 3_600_000).toISOString()))
    await cluster.apply(manifest(names[2]!, 'acme.other', new Date(now - 60_000).toISOString()))
    await cluster.apply(manifest(names[3]!, 'acme.wine-models'))
    const env = { GITHUB_REPOSITORY: REPO }
    const sweep = await runAction({ action: 'cleanup', namespace: 'deploy', timeout: '2m' }, env)
    expectSuccess(sweep)
    expect(sweep.stdout).toContain('cleanup previews: deleted 1: gh-sweep-expired; kept 2')
    expect(await get(names[0]!)).toBeUndefined()
    for (const n of names.slice(1)) expect(await get(n)).toBeDefined()

    await new Promise((r) => setTimeout(r, 2_000))
    const old = await runAction(
      { action: 'cleanup', namespace: 'deploy', 'cleanup-older-than': '1s', timeout: '2m' },
      env,
    )
    expectSuccess(old)
    expect(old.stdout).toMatch(/cleanup previews: deleted 2: .*; kept 0/)
    expect(await get(names[1]!)).toBeUndefined()
    expect(await get(names[3]!)).toBeUndefined()
    expect(await get(names[2]!)).toBeDefined()
  })
})
