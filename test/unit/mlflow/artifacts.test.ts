import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DirectoryCache,
  artifactPathProblem,
  downloadModel,
  listModelFiles,
  mapLimit,
  modelCacheKey,
  proxiedLocation,
  readModelFile,
} from '../../../src/mlflow/artifacts.js'
import { NO_AUTH } from '../../../src/mlflow/auth.js'
import { MlflowClient } from '../../../src/mlflow/client.js'
import { UndiciTransport } from '../../../src/util/http.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { FAST_RETRY, fakeServer, json, type FakeServer } from './fake-server.js'

test.each([
  [
    'http://m:5000',
    'mlflow-artifacts:/1/models/m-abc/artifacts',
    { base: 'http://m:5000', path: '1/models/m-abc/artifacts' },
  ],
  [
    'https://h/mlflow/',
    'mlflow-artifacts:/1/r/artifacts/model/',
    { base: 'https://h/mlflow', path: '1/r/artifacts/model' },
  ],
  ['https://h/mlflow', 'mlflow-artifacts://other:8080/1/x', { base: 'https://other:8080/mlflow', path: '1/x' }],
  ['http://m', 'mlflow-artifacts:/1/a%20b', { base: 'http://m', path: '1/a b' }],
  ['http://m', 'http://n:5000/api/2.0/mlflow-artifacts/artifacts/1/x', { base: 'http://n:5000', path: '1/x' }],
])('proxiedLocation(%s, %s)', (tracking, uri, expected) => expect(proxiedLocation(tracking, uri)).toEqual(expected))

test.each([['s3://bucket/1/x'], ['/var/mlruns/1/x'], ['file:///mlruns/1/x'], ['dbfs:/databricks/mlflow-registry/x']])(
  'proxiedLocation refuses %s with what to do',
  (uri) =>
    expect(proxiedLocation('http://m', uri)).toMatch(
      /does not proxy: start MLflow with --serve-artifacts.*serving: mlflow-runtime/,
    ),
)

test('modelCacheKey changes with location and with any file size', () => {
  const files = [
    { path: 'MLmodel', size: 10 },
    { path: 'model.pkl', size: 100 },
  ]
  const k = modelCacheKey('http://m/', 'mlflow-artifacts:/1/x', files)
  expect(k).toMatch(/^[0-9a-f]{32}$/)
  expect(modelCacheKey('http://m', 'mlflow-artifacts:/1/x', files)).toBe(k)
  expect(modelCacheKey('http://m', 'mlflow-artifacts:/1/y', files)).not.toBe(k)
  expect(modelCacheKey('http://m', 'mlflow-artifacts:/1/x', [files[0]!, { path: 'model.pkl', size: 101 }])).not.toBe(k)
})

test('mapLimit keeps order and the limit', async () => {
  let running = 0
  let peak = 0
  const out = await mapLimit([5, 1, 3, 2, 4], 2, async (n) => {
    peak = Math.max(peak, ++running)
    await new Promise((r) => setTimeout(r, n))
    running--
    return n * 10
  })
  expect(out).toEqual([50, 10, 30, 20, 40])
  expect(peak).toBe(2)
})

// A proxied artifact store: a tree of files, with hooks for faults.
const TREE: Record<string, Buffer> = {
  MLmodel: Buffer.from('flavors: {python_function: {loader_module: mlflow.sklearn}}\n'),
  'requirements.txt': Buffer.from('mlflow==3.17.2\nscikit-learn==1.5.2\n'),
  'model.pkl': Buffer.alloc(300_000, 7),
  'sub dir/é.json': Buffer.from('{}'),
}
const ROOT = '1/models/m-abc/artifacts'

function artifactServer(fault: (path: string, attempt: number) => 'reset' | 'gone' | undefined = () => undefined) {
  const attempts: Record<string, number> = {}
  return fakeServer((req, res) => {
    const url = new URL(req.url!, 'http://x')
    const prefix = '/api/2.0/mlflow-artifacts/artifacts'
    if (url.pathname === prefix) {
      const dir = (url.searchParams.get('path') ?? '').replace(`${ROOT}`, '').replace(/^\//, '')
      const entries = new Map<string, { path: string; is_dir: boolean; file_size?: number }>()
      for (const [p, b] of Object.entries(TREE)) {
        if (dir && !p.startsWith(`${dir}/`)) continue
        const rest = dir ? p.slice(dir.length + 1) : p
        const [head, ...tail] = rest.split('/')
        entries.set(
          head!,
          tail.length ? { path: head!, is_dir: true } : { path: head!, is_dir: false, file_size: b.length },
        )
      }
      return json(res, 200, { files: [...entries.values()] })
    }
    const path = decodeURIComponent(url.pathname.slice(prefix.length + 1)).slice(ROOT.length + 1)
    attempts[path] = (attempts[path] ?? 0) + 1
    const body = TREE[path]
    const f = fault(path, attempts[path]!)
    if (!body || f === 'gone') return json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'not found' })
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
    if (f === 'reset') {
      res.write(body.subarray(0, 1000))
      setTimeout(() => res.socket?.destroy(), 10)
      return
    }
    res.end(body)
  })
}

describe('listing and downloading through a loopback artifact server', () => {
  const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
  afterAll(() => http.close())
  const uri = `mlflow-artifacts:/${ROOT}`
  let server: FakeServer
  afterEach(() => server?.close())
  const client = () => new MlflowClient({ trackingUri: server.url, http, auth: NO_AUTH, log: new MemoryLogger() })
  const opts = { retry: FAST_RETRY, sleep: async () => undefined }

  test('lists recursively, reads a small file, downloads everything', async () => {
    server = await artifactServer()
    const files = await listModelFiles(client(), uri)
    expect(files).toEqual([
      { path: 'MLmodel', size: TREE.MLmodel!.length },
      { path: 'model.pkl', size: 300_000 },
      { path: 'requirements.txt', size: TREE['requirements.txt']!.length },
      { path: 'sub dir/é.json', size: 2 },
    ])
    expect((await readModelFile(client(), uri, 'requirements.txt'))?.toString()).toContain('scikit-learn')
    expect(await readModelFile(client(), uri, 'absent.txt')).toBeUndefined()
    const dest = join(mkdtempSync(join(tmpdir(), 'dl-')), 'model')
    await downloadModel(client(), uri, files, dest, opts)
    expect(readFileSync(join(dest, 'model.pkl')).equals(TREE['model.pkl']!)).toBe(true)
    expect(readFileSync(join(dest, 'sub dir/é.json'), 'utf8')).toBe('{}')
  })

  test('a reset mid-download is retried and the file completes', async () => {
    server = await artifactServer((p, n) => (p === 'model.pkl' && n === 1 ? 'reset' : undefined))
    const files = await listModelFiles(client(), uri)
    const dest = join(mkdtempSync(join(tmpdir(), 'dl-')), 'model')
    await downloadModel(client(), uri, files, dest, opts)
    expect(readFileSync(join(dest, 'model.pkl')).length).toBe(300_000)
  })

  test('an artifact that vanishes mid-download: clear error, no model directory left', async () => {
    server = await artifactServer((p, n) => (p === 'model.pkl' ? (n === 1 ? 'reset' : 'gone') : undefined))
    const files = await listModelFiles(client(), uri)
    const parent = mkdtempSync(join(tmpdir(), 'dl-'))
    await expect(downloadModel(client(), uri, files, join(parent, 'model'), opts)).rejects.toThrow(
      `model.pkl vanished from ${uri} during the download (listed, then HTTP 404): the model's artifacts were deleted or replaced; run again`,
    )
    expect(readdirSync(parent)).toEqual([])
  })

  test('a file that keeps coming back truncated fails after the retries, atomically', async () => {
    server = await artifactServer((p) => (p === 'model.pkl' ? 'reset' : undefined))
    const files = await listModelFiles(client(), uri)
    const parent = mkdtempSync(join(tmpdir(), 'dl-'))
    await expect(downloadModel(client(), uri, files, join(parent, 'model'), opts)).rejects.toThrow(
      /downloading model.pkl from .* failed after 4 attempts/,
    )
    expect(readdirSync(parent)).toEqual([])
  })

  test('a size that differs from the listing is not accepted', async () => {
    server = await artifactServer()
    const files = (await listModelFiles(client(), uri)).map((f) =>
      f.path === 'MLmodel' ? { ...f, size: f.size + 5 } : f,
    )
    const parent = mkdtempSync(join(tmpdir(), 'dl-'))
    await expect(downloadModel(client(), uri, files, join(parent, 'model'), opts)).rejects.toThrow(
      /MLmodel .* failed after 4 attempts: got \d+ bytes, listed \d+/,
    )
    expect(existsSync(join(parent, 'model'))).toBe(false)
  })

  test('a directory without MLmodel is not a model', async () => {
    server = await fakeServer((_req, res) =>
      json(res, 200, { files: [{ path: 'data.csv', is_dir: false, file_size: 3 }] }),
    )
    await expect(listModelFiles(client(), uri)).rejects.toThrow(
      `${uri} is not an MLflow model directory (no MLmodel file); files there: data.csv`,
    )
  })
})

test('DirectoryCache: save moves the directory in, find finds it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'cache-'))
  const cache = new DirectoryCache(join(root, 'c'))
  expect(await cache.find('k')).toBeUndefined()
  const dir = mkdtempSync(join(root, 'm-'))
  const saved = await cache.save('k', dir)
  expect(await cache.find('k')).toBe(saved)
  expect(existsSync(dir)).toBe(false)
})

// Paths come from the server: a hostile or broken one must not write outside the download directory.
test.each([
  ['MLmodel', undefined],
  ['sub dir/é.json', undefined],
  ['a/b/c.bin', undefined],
  ['..', 'a ".." segment'],
  ['../../.bashrc', 'a ".." segment'],
  ['a/../../b', 'a ".." segment'],
  ['/etc/passwd', 'an absolute path'],
  ['C:/Windows/x', 'an absolute path'],
  ['a\\..\\..\\x', 'a backslash'],
  ['x\u0000y', 'a NUL character'],
  ['', 'an empty segment'],
  ['a//b', 'an empty segment'],
  ['./a', 'a "." segment'],
])('artifactPathProblem(%j) → %s', (path, problem) => expect(artifactPathProblem(path)).toBe(problem))

describe('artifact paths are confined to the download directory', () => {
  const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
  afterAll(() => http.close())
  const uri = `mlflow-artifacts:/${ROOT}`
  let server: FakeServer
  afterEach(() => server?.close())
  const client = () => new MlflowClient({ trackingUri: server.url, http, auth: NO_AUTH, log: new MemoryLogger() })

  test.each([
    ['..', true, 'a ".." segment'],
    ['../../outside.txt', false, 'a ".." segment'],
    ['/etc/cron.d/x', false, 'an absolute path'],
    ['a\\..\\..\\x', false, 'a backslash'],
    ['x\u0000y', false, 'a NUL character'],
  ])('a listing naming %j is refused, naming the path and the server', async (name, isDir, problem) => {
    server = await fakeServer((_req, res) =>
      json(res, 200, {
        files: [
          { path: 'MLmodel', is_dir: false, file_size: 3 },
          { path: name, is_dir: isDir, file_size: 3 },
        ],
      }),
    )
    await expect(listModelFiles(client(), uri)).rejects.toThrow(
      `MLflow at ${server.url} listed the artifact path ${JSON.stringify(name)} in ${uri}: it has ${problem}, which could place a file outside the download directory; nothing was downloaded`,
    )
  })

  test.each([['../escaped.txt'], ['/tmp/escaped.txt'], ['a/../../escaped.txt']])(
    'downloadModel refuses %j before writing anything',
    async (path) => {
      server = await artifactServer()
      const parent = mkdtempSync(join(tmpdir(), 'dl-'))
      const files = [
        { path: 'MLmodel', size: TREE.MLmodel!.length },
        { path, size: 2 },
      ]
      await expect(
        downloadModel(client(), uri, files, join(parent, 'model'), { retry: FAST_RETRY, sleep: async () => undefined }),
      ).rejects.toThrow(`MLflow at ${server.url} listed the artifact path ${JSON.stringify(path)} in ${uri}`)
      expect(readdirSync(parent)).toEqual([])
      expect(server.requests).toEqual([])
    },
  )
})

describe('one failed download cancels its siblings before the temporary directory goes', () => {
  test('mapLimit aborts the others and waits for them before it rejects', async () => {
    const settled: string[] = []
    const err = await mapLimit(['fails', 'waits', 'never started'], 2, async (item, signal) => {
      if (item === 'fails') throw new Error('boom')
      if (item === 'never started') settled.push('never started ran')
      await once(signal, 'abort')
      settled.push(`${item}: aborted`)
      throw signal.reason
    }).catch((e: Error) => e)
    expect((err as Error).message).toBe('boom')
    expect(settled).toEqual(['waits: aborted'])
  })

  test('mapLimit passes a caller abort on to every item', async () => {
    const outer = new AbortController()
    const seen: boolean[] = []
    const p = mapLimit(
      [1, 2],
      2,
      async (_n, signal) => {
        await once(signal, 'abort')
        seen.push(signal.aborted)
        throw signal.reason
      },
      outer.signal,
    )
    outer.abort(new Error('cancelled by SIGINT'))
    await expect(p).rejects.toThrow('cancelled by SIGINT')
    expect(seen).toEqual([true, true])
  })

  test('a file that vanishes while a sibling streams: the sibling is cut, nothing is left behind', async () => {
    const http = new UndiciTransport({ retry: FAST_RETRY, sleep: async () => undefined })
    const uri = `mlflow-artifacts:/${ROOT}`
    let slowClosed: Promise<unknown> | undefined
    const server = await fakeServer((req, res) => {
      if (req.url!.endsWith('/model.pkl')) {
        // Half the file, then nothing until the client goes away.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 300_000 })
        res.write(Buffer.alloc(1000))
        slowClosed = once(res, 'close')
        return
      }
      json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'gone' })
    })
    try {
      const client = new MlflowClient({ trackingUri: server.url, http, auth: NO_AUTH, log: new MemoryLogger() })
      const parent = mkdtempSync(join(tmpdir(), 'dl-'))
      const files = [
        { path: 'model.pkl', size: 300_000 },
        { path: 'MLmodel', size: 10 },
      ]
      await expect(
        downloadModel(client, uri, files, join(parent, 'model'), { retry: FAST_RETRY, sleep: async () => undefined }),
      ).rejects.toThrow(/MLmodel vanished from/)
      // The streaming sibling was aborted (its connection closed) and the partial directory is gone.
      await slowClosed
      expect(readdirSync(parent)).toEqual([])
    } finally {
      await server.close()
      await http.close()
    }
  })
})
