// cosign against the rig's real registries: key pairs made by `cosign generate-key-pair`, images
// signed and verified by the Cosign module, and the ways a signature fails to verify: none at all,
// another key's, and a signature moved from another digest. Sigstore's public services are not
// reachable here: key-based signing without Rekor (keyless is documented in the README).
import { execFile } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { actionsExec } from '../../../src/image/exec.js'
import { MODEL_ATTESTATION_TYPE } from '../../../src/image/attestation.js'
import { Cosign } from '../../../src/image/signing.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'

const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'signing-'))
const PASSWORD = 'rig-cosign-password'
const RUN = Date.now().toString(36)

/** A key pair as users make one: cosign.key (encrypted with COSIGN_PASSWORD) and cosign.pub. */
async function keyPair(prefix: string) {
  await run(rigEnv('COSIGN_BIN'), ['generate-key-pair', '--output-key-prefix', join(dir, prefix)], {
    env: { ...process.env, COSIGN_PASSWORD: PASSWORD },
  })
  return {
    privatePem: readFileSync(join(dir, `${prefix}.key`), 'utf8'),
    publicPem: readFileSync(join(dir, `${prefix}.pub`), 'utf8'),
    publicPath: join(dir, `${prefix}.pub`),
  }
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** A registry's v2 API; the auth registry with the rig's pusher credentials. */
function registryApi(registry: string) {
  const auth =
    registry === rigEnv('REGISTRY_AUTH')
      ? {
          authorization: `Basic ${Buffer.from(`${rigEnv('REGISTRY_AUTH_USER')}:${rigEnv('REGISTRY_AUTH_PASSWORD')}`).toString('base64')}`,
        }
      : {}
  return async (method: string, path: string, init: { body?: Buffer | string; type?: string } = {}) => {
    const url = path.startsWith('http') ? path : `http://${registry}${path}`
    const res = await fetch(url, {
      method,
      headers: {
        ...auth,
        accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
        ...(init.type ? { 'content-type': init.type } : {}),
      },
      body: init.body,
    })
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
    return res
  }
}

/** Pushes a tiny image of its own (a unique config, no layers); returns registry/repo@digest. */
async function pushImage(registry: string, repository: string): Promise<string> {
  const api = registryApi(registry)
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
      config: { Labels: { nonce: randomUUID() } },
    }),
  )
  const start = await api('POST', `/v2/${repository}/blobs/uploads/`)
  const location = new URL(start.headers.get('location')!, `http://${registry}`)
  location.searchParams.set('digest', sha256(config))
  await api('PUT', location.toString(), { body: config, type: 'application/octet-stream' })
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [],
  })
  const digest = sha256(manifest)
  await api('PUT', `/v2/${repository}/manifests/${digest}`, {
    body: manifest,
    type: 'application/vnd.oci.image.manifest.v1+json',
  })
  return `${registry}/${repository}@${digest}`
}

/** The manifest under cosign's signature tag for a digest (sha256-<hex>.sig). */
const sigTag = (image: string) => image.split('@')[1]!.replace(':', '-') + '.sig'

async function signatureManifest(image: string): Promise<{ layers: unknown[] }> {
  const [repo] = image.split('@')
  const [registry, ...path] = repo!.split('/')
  const res = await registryApi(registry!)('GET', `/v2/${path.join('/')}/manifests/${sigTag(image)}`)
  return (await res.json()) as { layers: unknown[] }
}

const cosign = (env: Record<string, string> = {}) =>
  new Cosign({ exec: actionsExec, log: new MemoryLogger(), cosign: rigEnv('COSIGN_BIN'), env })

let a: Awaited<ReturnType<typeof keyPair>>
let b: Awaited<ReturnType<typeof keyPair>>
let signed: string
let unsigned: string

beforeAll(async () => {
  ;[a, b] = await Promise.all([keyPair('a'), keyPair('b')])
  const repository = `signing-${RUN}`
  signed = await pushImage(rigEnv('REGISTRY'), repository)
  unsigned = await pushImage(rigEnv('REGISTRY'), repository)
})

test('cosign is found and reports its version', async () => {
  expect(await cosign().version()).toMatch(/^v?\d+\.\d+\.\d+|devel|unknown/)
})

test('signed with a key pair (PEM and password), the signature verifies with its public key, PEM or path', async () => {
  await cosign().sign(signed, { kind: 'key', key: { pem: a.privatePem }, password: PASSWORD })
  await cosign().verify(signed, { kind: 'key', key: { pem: a.publicPem } })
  await cosign().verify(signed, { kind: 'key', key: { path: a.publicPath } })
  expect((await signatureManifest(signed)).layers).toHaveLength(1)
})

test('signing a signed image again with the same key adds no signature (the cache-hit case)', async () => {
  await cosign().sign(signed, { kind: 'key', key: { pem: a.privatePem }, password: PASSWORD })
  expect((await signatureManifest(signed)).layers).toHaveLength(1)
})

test('an unsigned image is refused, naming its digest', async () => {
  const err = await cosign()
    .verify(unsigned, { kind: 'key', key: { pem: a.publicPem } })
    .catch((e: unknown) => e as Error)
  expect(err).toBeInstanceOf(Error)
  expect((err as Error).message).toBe(
    `the signature of ${unsigned} did not verify: wanted a signature by the public key in verify-signature; cosign: no signatures found`,
  )
})

test("another key's signature is refused", async () => {
  const err = await cosign()
    .verify(signed, { kind: 'key', key: { path: b.publicPath } })
    .catch((e: unknown) => e as Error)
  expect((err as Error).message).toMatch(
    new RegExp(
      `^the signature of ${signed.replace(/[.]/g, '\\.')} did not verify: wanted a signature by the public key ${b.publicPath}; cosign: no matching signatures`,
    ),
  )
  expect((err as Error).message).not.toContain('\n')
})

test('a signature moved from another digest is refused (tampered)', async () => {
  // Another image, signed by key a; its signature manifest copied to the tag of the first image's digest.
  const other = await pushImage(rigEnv('REGISTRY'), `signing-${RUN}`)
  const victim = await pushImage(rigEnv('REGISTRY'), `signing-${RUN}`)
  await cosign().sign(other, { kind: 'key', key: { pem: a.privatePem }, password: PASSWORD })
  const api = registryApi(rigEnv('REGISTRY'))
  const manifest = await (await api('GET', `/v2/signing-${RUN}/manifests/${sigTag(other)}`)).text()
  const type = JSON.parse(manifest).mediaType as string
  await api('PUT', `/v2/signing-${RUN}/manifests/${sigTag(victim)}`, { body: manifest, type })
  const err = await cosign()
    .verify(victim, { kind: 'key', key: { pem: a.publicPem } })
    .catch((e: unknown) => e as Error)
  expect((err as Error).message).toMatch(/did not verify: .*cosign: no matching signatures/)
})

test("a wrong password fails the signing with cosign's reason, and no password in it", async () => {
  const err = await cosign()
    .sign(unsigned, { kind: 'key', key: { pem: a.privatePem }, password: 'not-the-password' })
    .catch((e: unknown) => e as Error)
  expect((err as Error).message).toMatch(new RegExp(`^signing ${unsigned.replace(/[.]/g, '\\.')} failed: .*decrypt`))
  expect((err as Error).message).not.toContain('not-the-password')
})

test('the auth registry: signed and verified with the docker config that logs in to it', async () => {
  const image = await pushImage(rigEnv('REGISTRY_AUTH'), `signing-${RUN}`)
  const env = { DOCKER_CONFIG: rigEnv('DOCKER_CONFIG_AUTH') }
  await cosign(env).sign(image, { kind: 'key', key: { pem: a.privatePem }, password: PASSWORD })
  await cosign(env).verify(image, { kind: 'key', key: { pem: a.publicPem } })
})

describe('the model attestation', () => {
  const TYPE = MODEL_ATTESTATION_TYPE
  const predicate = (version: string) => ({
    model: { name: 'wine', version, runId: `run-${version}`, listingDigest: `sha256:${'1'.repeat(64)}` },
  })
  const signer = () => ({ kind: 'key' as const, key: { pem: a.privatePem }, password: PASSWORD })

  /** The attestation as anyone can fetch it: cosign's `.att` tag, its DSSE layer, the in-toto statement. */
  async function fetchAttestations(
    image: string,
  ): Promise<{ subject: unknown; predicateType: string; predicate: unknown }[]> {
    const [repo, digest] = image.split('@')
    const [registry, ...path] = repo!.split('/')
    const api = registryApi(registry!)
    const tag = digest!.replace(':', '-') + '.att'
    const manifest = (await (await api('GET', `/v2/${path.join('/')}/manifests/${tag}`)).json()) as {
      layers: { digest: string; mediaType: string }[]
    }
    return Promise.all(
      manifest.layers.map(async (l) => {
        const envelope = (await (await api('GET', `/v2/${path.join('/')}/blobs/${l.digest}`)).json()) as {
          payload: string
        }
        return JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'))
      }),
    )
  }

  let image: string
  beforeAll(async () => {
    image = await pushImage(rigEnv('REGISTRY'), `signing-${RUN}`)
    await cosign().sign(image, signer())
  })

  test('attached, it is in the registry beside the image, about its digest, and verifies with the public key', async () => {
    const started = Date.now()
    await cosign().attest(image, signer(), TYPE, predicate('3'))
    const seconds = (Date.now() - started) / 1000
    const [statement, ...more] = await fetchAttestations(image)
    expect(more).toEqual([])
    expect(statement).toMatchObject({
      predicateType: TYPE,
      subject: [{ digest: { sha256: image.split('@sha256:')[1] } }],
      predicate: predicate('3'),
    })
    expect(await cosign().verifiedPredicates(image, { kind: 'key', key: { pem: a.publicPem } }, TYPE)).toEqual([
      predicate('3'),
    ])
    expect(seconds).toBeLessThan(30) // the figure is in the note; this only bounds a hang
  })

  test('a later run replaces it (one attestation per image, the latest)', async () => {
    await cosign().attest(image, signer(), TYPE, predicate('4'))
    expect((await fetchAttestations(image)).map((s) => s.predicate)).toEqual([predicate('4')])
  })

  test("none for another key's verifier, none for an image without one, none of another type", async () => {
    expect(await cosign().verifiedPredicates(image, { kind: 'key', key: { path: b.publicPath } }, TYPE)).toEqual([])
    const bare = await pushImage(rigEnv('REGISTRY'), `signing-${RUN}`)
    expect(await cosign().verifiedPredicates(bare, { kind: 'key', key: { pem: a.publicPem } }, TYPE)).toEqual([])
    expect(
      await cosign().verifiedPredicates(
        image,
        { kind: 'key', key: { pem: a.publicPem } },
        'https://slsa.dev/provenance/v1',
      ),
    ).toEqual([])
  })

  test('an attestation moved from another digest does not verify (tampered)', async () => {
    const other = await pushImage(rigEnv('REGISTRY'), `signing-${RUN}`)
    const victim = await pushImage(rigEnv('REGISTRY'), `signing-${RUN}`)
    await cosign().attest(other, signer(), TYPE, predicate('9'))
    const api = registryApi(rigEnv('REGISTRY'))
    const att = (d: string) => d.split('@')[1]!.replace(':', '-') + '.att'
    const manifest = await (await api('GET', `/v2/signing-${RUN}/manifests/${att(other)}`)).text()
    await api('PUT', `/v2/signing-${RUN}/manifests/${att(victim)}`, {
      body: manifest,
      type: JSON.parse(manifest).mediaType as string,
    })
    expect(await cosign().verifiedPredicates(victim, { kind: 'key', key: { pem: a.publicPem } }, TYPE)).toEqual([])
  })
})
