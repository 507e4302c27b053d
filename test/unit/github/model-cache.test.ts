import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  actionsCacheKey,
  chooseModelCache,
  GitHubModelCache,
  type ActionsCacheApi,
  type ModelCacheMode,
} from '../../../src/github/model-cache.js'
import { MemoryLogger } from '../../support/memory-logger.js'

const SERVICE = { ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_RESULTS_URL: 'https://results.example/' }
const TOOLS = { RUNNER_TOOL_CACHE: '/opt/hostedtoolcache', RUNNER_TEMP: '/tmp/r' }

test.each<[string, ModelCacheMode, Record<string, string>, string]>([
  ['hosted runner: the Actions cache', 'auto', { ...SERVICE, ...TOOLS, RUNNER_ENVIRONMENT: 'github-hosted' }, 'github'],
  ['self-hosted runner: its tool cache', 'auto', { ...SERVICE, ...TOOLS, RUNNER_ENVIRONMENT: 'self-hosted' }, 'runner'],
  [
    'self-hosted without a tool cache: the Actions cache',
    'auto',
    { ...SERVICE, RUNNER_ENVIRONMENT: 'self-hosted' },
    'github',
  ],
  ['older runner (no RUNNER_ENVIRONMENT) with the service', 'auto', { ...SERVICE, ...TOOLS }, 'github'],
  ['a local directory wins', 'auto', { ...SERVICE, ...TOOLS, MLFLOW_K8S_DEPLOY_CACHE: '/c' }, 'directory'],
  ['outside GitHub: none', 'auto', {}, 'off'],
  ['off is off', 'off', { ...SERVICE, ...TOOLS }, 'off'],
  ['runner asked', 'runner', { ...SERVICE, ...TOOLS }, 'runner'],
  ['github asked', 'github', { ...SERVICE, ...TOOLS, RUNNER_ENVIRONMENT: 'self-hosted' }, 'github'],
])('chooseModelCache: %s', (_, mode, env, kind) => {
  expect(chooseModelCache(mode, env)).toEqual({ kind })
})

test.each<[ModelCacheMode, Record<string, string>, RegExp]>([
  ['github', TOOLS, /`github` needs GitHub's cache service.*exists only inside GitHub Actions/],
  ['runner', SERVICE, /`runner` needs a runner tool cache/],
])('chooseModelCache: %s without it names the input and the fix', (mode, env, problem) => {
  const choice = chooseModelCache(mode, env)
  expect('problem' in choice && choice.problem).toMatch(problem)
})

describe('GitHubModelCache', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gh-model-cache-'))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  /** An in-memory stand-in for @actions/cache: entries by key, restored to the saved path. */
  function memoryApi(): ActionsCacheApi & { calls: string[] } {
    const entries = new Map<string, Map<string, string>>()
    const calls: string[] = []
    return {
      calls,
      async saveCache(paths, key) {
        calls.push(`save ${key}`)
        if (entries.has(key)) return -1
        const files = new Map<string, string>()
        files.set('MLmodel', await readFile(join(paths[0]!, 'MLmodel'), 'utf8'))
        entries.set(key, files)
        return 1
      },
      async restoreCache(paths, key) {
        calls.push(`restore ${key}`)
        const files = entries.get(key)
        if (!files) return undefined
        await mkdir(paths[0]!, { recursive: true })
        for (const [name, text] of files) await writeFile(join(paths[0]!, name), text)
        return key
      },
    }
  }

  async function model(name: string): Promise<string> {
    const m = join(dir, name)
    await mkdir(m)
    await writeFile(join(m, 'MLmodel'), 'flavors: {}\n')
    return m
  }

  it('saves under the model key and restores to the same path in a later job', async () => {
    const api = memoryApi()
    const log = new MemoryLogger()
    const root = join(dir, 'models')
    const cache = new GitHubModelCache({ api, root, log })
    expect(await cache.find('k1')).toBeUndefined()
    const saved = await cache.save('k1', await model('download'))
    expect(saved).toBe(join(root, 'k1'))
    await cache.settle(new AbortController().signal)
    await rm(root, { recursive: true })

    const restored = await new GitHubModelCache({ api, root, log }).find('k1')
    expect(restored).toBe(join(root, 'k1'))
    expect(await readFile(join(restored!, 'MLmodel'), 'utf8')).toBe('flavors: {}\n')
    expect(api.calls).toEqual([
      `restore ${actionsCacheKey('k1')}`,
      `save ${actionsCacheKey('k1')}`,
      `restore ${actionsCacheKey('k1')}`,
    ])
  })

  it('goes on when the service fails: a miss on restore, the model kept on save', async () => {
    const log = new MemoryLogger()
    const api: ActionsCacheApi = {
      restoreCache: async () => Promise.reject(new Error('connect ECONNREFUSED')),
      saveCache: async () => Promise.reject(new Error('socket hang up')),
    }
    const cache = new GitHubModelCache({ api, root: join(dir, 'models'), log })
    expect(await cache.find('k')).toBeUndefined()
    const kept = await cache.save('k', await model('download'))
    await cache.settle(new AbortController().signal)
    expect(await readFile(join(kept, 'MLmodel'), 'utf8')).toBe('flavors: {}\n')
    expect(log.lines.join('\n')).toMatch(/could not be read \(connect ECONNREFUSED\)[\s\S]*not saved .*socket hang up/)
  })

  it('uploads beside the build: save returns at once, settle waits for the upload, a deadline abandons it', async () => {
    let finish: (id: number) => void = () => {}
    const api: ActionsCacheApi = {
      restoreCache: async () => undefined,
      saveCache: () => new Promise<number>((resolve) => (finish = resolve)),
    }
    const log = new MemoryLogger()
    const cache = new GitHubModelCache({ api, root: join(dir, 'models'), log })
    const dest = await cache.save('k', await model('download'))
    expect(await readFile(join(dest, 'MLmodel'), 'utf8')).toBe('flavors: {}\n')

    const deadline = new AbortController()
    const waiting = cache.settle(deadline.signal)
    deadline.abort()
    await waiting
    expect(log.lines.at(-1)).toMatch(/did not end in time: the next build downloads the model again/)

    finish(7)
    await cache.settle(new AbortController().signal)
    expect(log.lines.at(-1)).toMatch(/model saved to the Actions cache in \d+\.\d s/)
  })

  it('treats an entry without MLmodel as a miss', async () => {
    const log = new MemoryLogger()
    const api: ActionsCacheApi = {
      restoreCache: async (paths) => {
        await mkdir(paths[0]!, { recursive: true })
        return 'k'
      },
      saveCache: async () => 1,
    }
    expect(await new GitHubModelCache({ api, root: join(dir, 'm'), log }).find('k')).toBeUndefined()
    expect(log.lines.join('\n')).toMatch(/restored no MLmodel/)
  })
})
