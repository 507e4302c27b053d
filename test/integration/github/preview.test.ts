// Pull-request previews through the bundled action, against the rig's apiserver and a local fake
// of the GitHub REST API: the sticky comment, deployment statuses, a token that may not write,
// the deploy/delete race rule, and the TTL sweep of action: cleanup.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KNATIVE_SERVICE } from '../../../src/k8s/kube.js'
import { ServingCluster } from '../../../src/k8s/index.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigInputs, runAction, type ActionRun, expectSuccess } from '../action/run-action.js'
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

function event(action: string, state: 'open' | 'closed', pr = PR): string {
  const path = join(dir, `${action}-${pr}.json`)
  const pull_request = { number: pr, state, head: { sha: 'a'.repeat(40) } }
  writeFileSync(path, JSON.stringify({ action, number: pr, pull_request }))
  return path
}

function github(eventPath: string, pr = PR): Record<string, string> {
  return {
    GITHUB_API_URL: apiUrl,
    GITHUB_REPOSITORY: REPO,
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_SHA: 'b'.repeat(40),
    GITHUB_REF: `refs/pull/${pr}/merge`,
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

// A preview update racing the delete run of its closed PR. GitHub marks the PR closed before the
// `closed` workflow starts, so each case closes the PR in the fake, then runs the real delete:
// before the deploy starts (a deploy job picked up late), while the deploy waits for Ready, while
// its smoke test runs. Afterwards nothing contradicts the delete: no object (the admin watch sees
// none come back), the comment says removed, the environment's last status is inactive.
describe('a preview update racing the delete of its closed PR, at every stage', () => {
  let admin: ServingCluster
  const RACED = [911, 912, 913]
  beforeAll(() => {
    admin = ServingCluster.connect(
      { kubeconfig: { path: rigEnv('KUBECONFIG_ADMIN') }, kubeContext: undefined },
      new MemoryLogger(),
    )
  })
  afterAll(async () => {
    for (const pr of RACED) {
      await admin.remove({ target: 'knative', namespace: 'deploy', name: `gh-wine-pr-${pr}` }, { timeoutMs: 60_000 })
    }
  })

  /** A template whose container the candidate revision runs instead of the model server. */
  const template = (name: string, command: string[]): string => {
    const path = join(dir, `${name}.yaml`)
    const container = { name: 'mlserver', command }
    const spec = { template: { spec: { containers: [container] } } }
    writeFileSync(path, JSON.stringify({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', spec }))
    return path
  }
  // Never Ready: the deploy's wait stays pending (no crash, no pull error to fail on).
  const neverReady = () => template('never-ready', ['/bin/sh', '-c', 'sleep 3600'])
  // Ready (the probe asks /v2/models/<name>/ready) but every inference answers 503, as a model
  // still warming up does: the smoke test keeps retrying within its budget.
  const warmingUp = () =>
    template('warming-up', [
      'python',
      '-c',
      [
        'import http.server, os',
        'class H(http.server.BaseHTTPRequestHandler):',
        "    protocol_version = 'HTTP/1.1'",
        '    def reply(self, code, body):',
        '        self.send_response(code)',
        "        self.send_header('content-type', 'application/json')",
        "        self.send_header('content-length', str(len(body)))",
        '        self.end_headers()',
        '        self.wfile.write(body)',
        '    def do_GET(self):',
        "        self.reply(200, b'{}')",
        '    def do_POST(self):',
        "        self.rfile.read(int(self.headers.get('content-length') or 0))",
        '        self.reply(503, b\'{"error": "model still warming up"}\')',
        "http.server.ThreadingHTTPServer(('', int(os.environ.get('PORT', '8080'))), H).serve_forever()",
      ].join('\n'),
    ])

  /** Starts a run; `reached` resolves at the first line matching `at`, rejects if the run ends first. */
  function runUntil(inputs: Record<string, string>, env: Record<string, string>, at: RegExp) {
    let hit: (line: string) => void = () => undefined
    const reached = new Promise<string>((resolve) => (hit = resolve))
    const run = runAction(inputs, env, { onLine: (line) => at.test(line) && hit(line) })
    const ended = run.then((r) => {
      throw new Error(`the run ended (${r.status}) before a line matching ${at}:\n${r.stdout.slice(-3000)}`)
    })
    return { run, reached: Promise.race([reached, ended]) }
  }

  /**
   * The object's events as the admin sees them, from now until stop(): a re-create at any moment
   * (by a rollback, or by the deploy's apply after the delete) shows as an ADDED after the DELETED.
   */
  async function observe(name: string) {
    const seen: string[] = []
    const stop = new AbortController()
    let { resourceVersion: rv } = await admin.kube.list(KNATIVE_SERVICE, 'deploy', name)
    const watching = (async () => {
      while (!stop.signal.aborted) {
        await admin.kube
          .watch(
            KNATIVE_SERVICE,
            'deploy',
            name,
            rv,
            (type, o) => {
              const meta = (o as { metadata?: { resourceVersion?: string; uid?: string } }).metadata
              rv = meta?.resourceVersion ?? rv
              if (type !== 'BOOKMARK') seen.push(`${type} ${meta?.uid}`)
            },
            stop.signal,
          )
          .catch((err: unknown) => {
            if (!stop.signal.aborted) throw err
          })
      }
    })()
    return {
      /** After the runs: a few more seconds for a late re-create to show, then the events. */
      async stop(): Promise<string[]> {
        await new Promise((r) => setTimeout(r, 5_000))
        stop.abort()
        await watching
        return seen
      },
    }
  }

  const closeAndDelete = (pr: number, onLine?: (line: string) => void) => {
    fake.pulls.set(pr, 'closed')
    return runAction(
      {
        ...rigInputs(),
        'model-uri': 'models:/x/1',
        action: 'delete',
        name: 'gh-wine',
        preview: 'true',
        'pr-number': String(pr),
        'github-token': TOKEN,
      },
      github(event('closed', 'closed', pr), pr),
      { onLine },
    )
  }

  /** A live preview of v1 for the PR: comment "live", a success deployment. */
  async function livePreview(pr: number): Promise<void> {
    fake.pulls.set(pr, 'open')
    const v1 = await runAction(preview('1', { 'pr-number': String(pr) }), github(event('opened', 'open', pr), pr))
    expectSuccess(v1)
    expect(fake.comments.get(pr)![0]!.body).toContain('is live')
  }

  /** What the delete owns, as the delete left it: removed, inactive, and no word from the deploy. */
  async function expectNothingContradictsTheDelete(pr: number, events: string[], deleted: ActionRun) {
    const name = `gh-wine-pr-${pr}`
    expectSuccess(deleted)
    expect(events.at(-1)).toMatch(/^DELETED /)
    expect(await admin.kube.get(KNATIVE_SERVICE, 'deploy', name)).toBeUndefined()
    const comments = fake.comments.get(pr)!
    expect(comments).toHaveLength(1)
    expect(comments[0]!.body).toContain(`Preview \`${name}\` was removed`)
    expect(comments[0]!.body).not.toContain('failed to deploy')
    const deployments = fake.deployments.filter((d) => d.environment === `preview-pr-${pr}`)
    expect(deployments.at(-1)!.statuses.at(-1)!.state).toBe('inactive')
    expect(deployments.flatMap((d) => d.statuses.map((s) => s.state))).not.toContain('failure')
  }

  test('before the apply: a deploy that starts after the delete removes what it applied', async () => {
    const pr = RACED[0]!
    await livePreview(pr)
    const seen = await observe(`gh-wine-pr-${pr}`)
    const deleted = await closeAndDelete(pr)
    // A deploy job picked up after the close: its payload still says synchronize / open.
    const deploy = await runAction(
      preview('2', { 'pr-number': String(pr) }),
      github(event('synchronize', 'open', pr), pr),
    )
    const events = await seen.stop()
    expect(deploy.status).not.toBe(0)
    expect(deploy.errors.join('\n')).toContain(
      `confirm preview: pull request #${pr} was closed while this deploy ran: the preview it applied was removed again`,
    )
    // Deleted by the delete run, created by the deploy's apply, deleted again by the deploy.
    expect(events.map((e) => e.split(' ')[0])).toEqual(expect.arrayContaining(['DELETED', 'ADDED', 'DELETED']))
    await expectNothingContradictsTheDelete(pr, events, deleted)
    expect(deploy.outputs['url']).toBeUndefined()
  })

  test.each([
    ['the wait', 912, neverReady, /^::group::wait for ready$/, 'wait for ready'],
    ['the smoke test', 913, warmingUp, /^smoke test: POST /, 'smoke test'],
  ])('during %s: the deploy stops, re-creates nothing and writes nothing', async (_stage, pr, tpl, at, stage) => {
    await livePreview(pr)
    const seen = await observe(`gh-wine-pr-${pr}`)
    const update = runUntil(
      preview('2', { 'pr-number': String(pr), template: tpl() }),
      github(event('synchronize', 'open', pr), pr),
      at,
    )
    await update.reached
    const started = performance.now()
    let gone = NaN
    const [deploy, deleted] = await Promise.all([
      update.run.then((r) => ({ ...r, ended: performance.now() })),
      closeAndDelete(pr, (line) => line.startsWith('deleted Service ') && (gone = performance.now())),
    ])
    const events = await seen.stop()
    // Figures for the notes (no assertion on time): the delete run's start includes node's startup.
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`
    console.info(
      `${stage}: the deploy ended ${s(deploy.ended - started)} after the delete run started, ` +
        `${s(deploy.ended - gone)} after it saw the object gone`,
    )
    expect(deploy.status).not.toBe(0)
    expect(deploy.errors.join('\n')).toContain(
      `${stage}: pull request #${pr} was closed while this deploy ran; its preview was deleted by the delete run: nothing was re-created`,
    )
    // The delete ended the stage: the object found gone, so no rollback was even tried.
    expect(deploy.stdout).toMatch(/the deploy failed with: .*deleted.*: nothing is rolled back, and nothing re-created/)
    expect(deploy.stdout).not.toContain('rolling back')
    await expectNothingContradictsTheDelete(pr, events, deleted)
    // Nothing serves: no URL or revision of a preview that is gone.
    expect(deploy.outputs['url']).toBeUndefined()
    expect(deploy.outputs['revision']).toBeUndefined()
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
