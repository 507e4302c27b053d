// The rig's GitHub Actions cache service: the control plane GitHub runs for @actions/cache's v2
// protocol (Twirp JSON under /twirp/github.actions.results.api.v1.CacheService/…), in front of a
// real Azure Blob server (Azurite). Entries' bytes go to and come from Azurite through SAS URLs,
// exactly as on GitHub; only this small key → blob index is the rig's own.
//   node server.mjs <port> <azurite blob endpoint> <runtime token>
// Rules kept as GitHub documents them: an entry is (key, version); a key is written once (a
// second create answers ok: false, "already exists"); restore matches the key exactly, then the
// restore keys as prefixes, newest first; requests need the runtime token as a Bearer token.
import { createServer } from 'node:http'
import {
  BlobSASPermissions,
  BlobServiceClient,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} from '@azure/storage-blob'

const [port, blobEndpoint, token] = process.argv.slice(2)
if (!port || !blobEndpoint || !token) throw new Error('usage: server.mjs <port> <azurite blob endpoint> <token>')

// Azurite's well-known development account (documented by Microsoft; not a secret).
const ACCOUNT = 'devstoreaccount1'
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
const CONTAINER = 'actions-cache'
const credential = new StorageSharedKeyCredential(ACCOUNT, KEY)
const container = new BlobServiceClient(blobEndpoint, credential).getContainerClient(CONTAINER)
await container.createIfNotExists()

/** key -> [{ version, blob, created, size? }] */
const entries = new Map()
let nextId = 1

function sasUrl(blob, permissions) {
  const sas = generateBlobSASQueryParameters(
    {
      containerName: CONTAINER,
      blobName: blob,
      permissions: BlobSASPermissions.parse(permissions),
      expiresOn: new Date(Date.now() + 3600_000),
    },
    credential,
  ).toString()
  return `${container.getBlockBlobClient(blob).url}?${sas}`
}

const methods = {
  CreateCacheEntry({ key, version }) {
    const list = entries.get(key) ?? []
    if (list.some((e) => e.version === version))
      return {
        ok: false,
        signed_upload_url: '',
        message: `cache entry with key ${key} and version ${version} already exists`,
      }
    const blob = `${nextId++}-${encodeURIComponent(key)}`
    list.push({ version, blob, created: Date.now(), size: undefined })
    entries.set(key, list)
    return { ok: true, signed_upload_url: sasUrl(blob, 'cw') }
  },
  FinalizeCacheEntryUpload({ key, version, size_bytes }) {
    const e = (entries.get(key) ?? []).find((x) => x.version === version)
    if (!e) return { ok: false, entry_id: '0', message: `no cache entry ${key} (${version}) is being created` }
    e.size = Number(size_bytes)
    return { ok: true, entry_id: String(e.blob.split('-')[0]) }
  },
  GetCacheEntryDownloadURL({ key, restore_keys = [], version }) {
    const done = (list) => (list ?? []).filter((x) => x.version === version && x.size !== undefined)
    let match = done(entries.get(key))[0]
    let matchedKey = key
    for (const prefix of restore_keys) {
      if (match) break
      const candidates = [...entries].flatMap(([k, list]) =>
        k.startsWith(prefix) ? done(list).map((e) => ({ k, e })) : [],
      )
      candidates.sort((a, b) => b.e.created - a.e.created)
      if (candidates[0]) ({ k: matchedKey, e: match } = candidates[0])
    }
    if (!match) return { ok: false, signed_download_url: '', matched_key: '' }
    return { ok: true, signed_download_url: sasUrl(match.blob, 'r'), matched_key: matchedKey }
  },
}

createServer((req, res) => {
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const m = /^\/twirp\/github\.actions\.results\.api\.v1\.CacheService\/(\w+)$/.exec(req.url ?? '')
  if (req.method === 'GET' && req.url === '/healthz') return reply(200, { ok: true })
  if (req.method !== 'POST' || !m || !methods[m[1]]) return reply(404, { code: 'bad_route', msg: `no ${req.url}` })
  if (req.headers.authorization !== `Bearer ${token}`)
    return reply(401, { code: 'unauthenticated', msg: 'missing or wrong runtime token' })
  let body = ''
  req.on('data', (c) => (body += c))
  req.on('end', () => {
    try {
      const out = methods[m[1]](JSON.parse(body || '{}'))
      console.log(`${new Date().toISOString()} ${m[1]} ${body} -> ok=${out.ok}`)
      reply(200, out)
    } catch (err) {
      reply(500, { code: 'internal', msg: String(err) })
    }
  })
}).listen(Number(port), '127.0.0.1', () => console.log(`actions cache service on 127.0.0.1:${port}`))
