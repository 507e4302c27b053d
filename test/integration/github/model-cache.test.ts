// The model cache in GitHub's Actions cache, through the real @actions/cache (v2 protocol: Twirp
// control plane, archive uploaded to and downloaded from Azure Blob over SAS URLs) against the
// rig: a real Azure Blob server (Azurite) behind the rig's stand-in for GitHub's cache index.
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as actionsCache from '@actions/cache'
import { GitHubModelCache } from '../../../src/github/model-cache.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'

const RUNNER_ENV = ['ACTIONS_RESULTS_URL', 'ACTIONS_RUNTIME_TOKEN', 'ACTIONS_CACHE_SERVICE_V2'] as const
const saved: Record<string, string | undefined> = {}
let dir: string

beforeAll(() => {
  // What a runner gives every action; @actions/cache reads it from the process environment.
  for (const k of [...RUNNER_ENV, 'GITHUB_SERVER_URL']) saved[k] = process.env[k]
  for (const k of RUNNER_ENV) process.env[k] = rigEnv(k)
  delete process.env.GITHUB_SERVER_URL
})
afterAll(() => {
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
})
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'actions-model-cache-'))
})
afterEach(() => rm(dir, { recursive: true, force: true }))

async function model(name: string, blob: Buffer): Promise<string> {
  const m = join(dir, name)
  await mkdir(join(m, 'data'), { recursive: true })
  await writeFile(join(m, 'MLmodel'), 'flavors:\n  python_function: {}\n')
  await writeFile(join(m, 'data', 'model.bin'), blob)
  return m
}

test('a model saved by one job is restored, byte for byte, by a later job on a fresh machine', async () => {
  const key = `it-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
  const blob = randomBytes(3 << 20) // incompressible: the archive really carries it
  const root = join(dir, 'models')
  const log = new MemoryLogger()

  const first = new GitHubModelCache({ api: actionsCache, root, log })
  expect(await first.find(key)).toBeUndefined()
  const savedTo = await first.save(key, await model('download', blob))
  await first.settle(new AbortController().signal)
  expect(log.lines.join('\n')).toMatch(/model saved to the Actions cache in \d+\.\d s/)

  // The later job: nothing on disk, the same path (RUNNER_TEMP is the same on every runner).
  await rm(root, { recursive: true, force: true })
  const restored = await new GitHubModelCache({ api: actionsCache, root, log }).find(key)
  expect(restored).toBe(savedTo)
  expect(Buffer.compare(await readFile(join(restored!, 'data', 'model.bin')), blob)).toBe(0)
  expect(log.lines.join('\n')).toMatch(/model restored from the Actions cache/)

  // A second save of the same key is refused by the service and does not fail the deploy.
  await rm(root, { recursive: true, force: true })
  const third = new GitHubModelCache({ api: actionsCache, root, log })
  const again = await third.save(key, await model('again', blob))
  await third.settle(new AbortController().signal)
  expect(await readFile(join(again, 'MLmodel'), 'utf8')).toMatch(/python_function/)
  expect(log.lines.at(-1)).toMatch(/not saved to the Actions cache; the deploy goes on/)
}, 60_000)

test('another model is a miss', async () => {
  const root = join(dir, 'models')
  const cache = new GitHubModelCache({ api: actionsCache, root, log: new MemoryLogger() })
  expect(await cache.find(`never-saved-${randomBytes(4).toString('hex')}`)).toBeUndefined()
}, 30_000)

test('a wrong runtime token: the deploy goes on without the cache', async () => {
  process.env.ACTIONS_RUNTIME_TOKEN = 'wrong'
  try {
    const log = new MemoryLogger()
    const cache = new GitHubModelCache({ api: actionsCache, root: join(dir, 'models'), log })
    expect(await cache.find('any')).toBeUndefined()
    const kept = await cache.save('any', await model('download', Buffer.from('x')))
    await cache.settle(new AbortController().signal)
    expect(await readFile(join(kept, 'MLmodel'), 'utf8')).toMatch(/python_function/)
  } finally {
    process.env.ACTIONS_RUNTIME_TOKEN = rigEnv('ACTIONS_RUNTIME_TOKEN')
  }
}, 60_000)
