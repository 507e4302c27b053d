// Signing through the bundled action on the rig: an unsigned image and an image signed by another
// key are refused at `verify signature` with nothing applied (checked in the cluster afterwards);
// `sign: true` with a key signs the image and the same run's verification lets it deploy; a
// missing cosign fails before anything is built. Key-based, without Rekor (unreachable here).
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { KNATIVE_SERVICE, Kube, KubeConfigTransport } from '../../../src/k8s/kube.js'
import { loadKubeconfig } from '../../../src/k8s/kubeconfig.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'
import { rigInputs, runAction, type ActionRun } from './run-action.js'

const RUN = Date.now().toString(36)
const PASSWORD = 'rig-cosign-password'
const dir = mkdtempSync(join(tmpdir(), 'action-signing-'))
const repository = `e2e-signing-${RUN}`
const refusedName = `refused-${RUN}`
const signedName = `signed-${RUN}`

async function keyPair(prefix: string) {
  await promisify(execFile)(rigEnv('COSIGN_BIN'), ['generate-key-pair', '--output-key-prefix', join(dir, prefix)], {
    env: { ...process.env, COSIGN_PASSWORD: PASSWORD },
  })
  return { privatePem: readFileSync(join(dir, `${prefix}.key`), 'utf8'), publicPath: join(dir, `${prefix}.pub`) }
}

function service(name: string) {
  const admin = new Kube(
    new KubeConfigTransport(
      loadKubeconfig({ kubeconfig: { path: rigEnv('KUBECONFIG_ADMIN') }, kubeContext: undefined }).config,
    ),
    new MemoryLogger(),
  )
  return admin.get(KNATIVE_SERVICE, 'deploy', name)
}

/** cosign on PATH as sigstore/cosign-installer puts it there; its key's password in COSIGN_PASSWORD. */
const withCosign = () => ({
  PATH: `${dirname(rigEnv('COSIGN_BIN'))}:${process.env['PATH'] ?? ''}`,
  COSIGN_PASSWORD: PASSWORD,
})

const deploy = (name: string, extra: Record<string, string>, env = withCosign()) =>
  runAction(
    {
      ...rigInputs(),
      'image-repository': `${rigEnv('REGISTRY')}/${repository}`,
      'model-uri': `models:/${rigEnv('FIXTURE_MODEL')}/1`,
      target: 'knative',
      name,
      ...extra,
    },
    env,
  )

function expectRefused(run: ActionRun, why: RegExp): void {
  expect(run.status).not.toBe(0)
  const image = `${rigEnv('REGISTRY')}/${repository}@sha256:[0-9a-f]{64}`.replace(/\./g, '\\.')
  expect(run.errors[0]).toMatch(
    new RegExp(`^::error::verify signature: the signature of ${image} did not verify: ${why.source}`),
  )
  expect(run.stdout).not.toContain('::group::apply')
}

let a: Awaited<ReturnType<typeof keyPair>>
let b: Awaited<ReturnType<typeof keyPair>>
beforeAll(async () => {
  ;[a, b] = await Promise.all([keyPair('a'), keyPair('b')])
})

afterAll(async () => {
  await deploy(signedName, { action: 'delete' })
})

test('sign without cosign on PATH fails before anything is built, naming the fix', async () => {
  const r = await deploy(
    refusedName,
    { sign: 'true', 'signing-key': a.privatePem },
    { PATH: '/usr/bin:/bin', COSIGN_PASSWORD: PASSWORD },
  )
  expect(r.status).not.toBe(0)
  expect(r.errors[0]).toBe(
    '::error::check cosign: cosign was not found on PATH: add sigstore/cosign-installer to the job before this step (or install cosign on the runner)',
  )
  expect(r.stdout).not.toContain('::group::build image')
})

test('an unsigned image is refused before the apply: nothing applied', async () => {
  const r = await deploy(refusedName, { 'verify-signature': a.publicPath })
  expectRefused(r, /wanted a signature by the public key .*a\.pub; cosign: no signatures found/)
  expect(await service(refusedName)).toBeUndefined()
})

test('sign: true with signing-key signs the reused image; verify-signature lets it deploy', async () => {
  const r = await deploy(signedName, {
    sign: 'true',
    'signing-key': a.privatePem,
    'verify-signature': readFileSync(a.publicPath, 'utf8'),
    wait: 'false',
    'smoke-test': 'false',
  })
  if (r.status !== 0) throw new Error(`action failed (${r.status}): ${r.errors.join(' | ') || r.stdout.slice(-2000)}`)
  expect(r.outputs['cache-hit']).toBe('true')
  expect(r.stdout).toContain(`sign image: signed ${r.outputs['image']} with signing-key`)
  expect(r.stdout).toContain(`verify signature: the signature of ${r.outputs['image']} verified (public key)`)
  // Masked as the runner is told to (::add-mask::), and nowhere else.
  const keyLine = a.privatePem.split('\n')[1]!
  expect(r.stdout).toContain(`::add-mask::${keyLine}`)
  expect(r.stdout).toContain(`::add-mask::${PASSWORD}`)
  const shown = r.stdout.replace(/^::add-mask::.*$/gm, '')
  expect(shown).not.toContain(keyLine)
  expect(shown).not.toContain(PASSWORD)
  expect(await service(signedName)).toBeDefined()
})

test('an image signed by another key is refused: nothing applied', async () => {
  const r = await deploy(refusedName, { 'verify-signature': b.publicPath })
  expectRefused(r, /wanted a signature by the public key .*b\.pub; cosign: no matching signatures/)
  expect(await service(refusedName)).toBeUndefined()
})

test('a build signed in the same run by a key verify-signature does not trust is refused: nothing applied', async () => {
  const r = await deploy(refusedName, {
    'image-repository': `${rigEnv('REGISTRY')}/${repository}-other`,
    sign: 'true',
    'signing-key': b.privatePem,
    'verify-signature': a.publicPath,
  })
  expect(r.outputs['cache-hit']).toBe('false')
  expect(r.stdout).toMatch(/sign image: signed \S+-other@sha256:[0-9a-f]{64} with signing-key/)
  expect(r.status).not.toBe(0)
  expect(r.errors[0]).toMatch(
    /^::error::verify signature: the signature of \S+-other@sha256:[0-9a-f]{64} did not verify: .*cosign: no matching signatures/,
  )
  expect(r.stdout).not.toContain('::group::apply')
  expect(await service(refusedName)).toBeUndefined()
})
