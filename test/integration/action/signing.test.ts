// Signing through the bundled action on the rig: an unsigned image and an image signed by another
// key are refused at `verify signature` with nothing applied (checked in the cluster afterwards);
// `sign: true` with a key signs the image and the same run's verification lets it deploy; a
// missing cosign fails before anything is built. Key-based, without Rekor (unreachable here).
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { MODEL_ATTESTATION_TYPE } from '../../../src/image/attestation.js'
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

describe('the model attestation', () => {
  const attestedName = `attested-${RUN}`
  const GITHUB_RUN = {
    GITHUB_REPOSITORY: 'acme/models',
    GITHUB_WORKFLOW_REF: 'acme/models/.github/workflows/deploy.yml@refs/heads/main',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '2',
    GITHUB_SHA: 'f'.repeat(40),
  }
  let deployed: ActionRun
  let c: Awaited<ReturnType<typeof keyPair>>

  /** What MLflow itself says about the fixture's version 1. */
  async function versionOne(): Promise<{ run_id: string; source: string }> {
    const url = new URL('/api/2.0/mlflow/model-versions/get', rigEnv('MLFLOW_URI'))
    url.searchParams.set('name', rigEnv('FIXTURE_MODEL'))
    url.searchParams.set('version', '1')
    return ((await (await fetch(url)).json()) as { model_version: { run_id: string; source: string } }).model_version
  }

  /** The in-toto statements cosign stored beside the image (its `.att` tag), as anyone can fetch them. */
  async function attestations(
    image: string,
  ): Promise<{ predicateType: string; subject: unknown; predicate: { model: Record<string, unknown> } }[]> {
    const [repo, digest] = image.split('@')
    const base = `http://${repo!.replace('/', '/v2/')}`
    const manifest = (await (
      await fetch(`${base}/manifests/${digest!.replace(':', '-')}.att`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      })
    ).json()) as { layers: { digest: string }[] }
    return Promise.all(
      manifest.layers.map(async (l) => {
        const envelope = (await (await fetch(`${base}/blobs/${l.digest}`)).json()) as { payload: string }
        return JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'))
      }),
    )
  }

  const cosignCli = (args: string[]) =>
    promisify(execFile)(rigEnv('COSIGN_BIN'), args, { env: { ...process.env, COSIGN_PASSWORD: PASSWORD } })

  beforeAll(async () => {
    c = await keyPair('c')
    deployed = await deploy(
      attestedName,
      {
        sign: 'true',
        'signing-key': a.privatePem,
        'verify-signature': a.publicPath,
        wait: 'false',
        'smoke-test': 'false',
      },
      { ...withCosign(), ...GITHUB_RUN },
    )
  })

  afterAll(async () => {
    await deploy(attestedName, { action: 'delete' })
  })

  test('sign: true attests the model: the registry holds a statement about the digest naming the version, its run and the workflow run', async () => {
    if (deployed.status !== 0)
      throw new Error(
        `action failed (${deployed.status}): ${deployed.errors.join(' | ') || deployed.stdout.slice(-2000)}`,
      )
    const image = deployed.outputs['image']!
    const mlflow = await versionOne()
    expect(deployed.stdout).toContain(
      `attest model: attested that ${image} serves ${rigEnv('FIXTURE_MODEL')} v1 (run ${mlflow.run_id})`,
    )
    expect(deployed.stdout).toContain(
      `verify signature: the signature of ${image} verified (public key); its model attestation names ${rigEnv('FIXTURE_MODEL')} v1 (run ${mlflow.run_id})`,
    )
    const [statement, ...more] = await attestations(image)
    expect(more).toEqual([])
    expect(statement!.predicateType).toBe(MODEL_ATTESTATION_TYPE)
    expect(statement!.subject).toEqual([expect.objectContaining({ digest: { sha256: image.split('@sha256:')[1] } })])
    expect(statement!.predicate).toMatchObject({
      model: {
        uri: `models:/${rigEnv('FIXTURE_MODEL')}/1`,
        trackingServer: rigEnv('MLFLOW_URI').replace(/\/+$/, ''),
        name: rigEnv('FIXTURE_MODEL'),
        version: '1',
        runId: mlflow.run_id,
        listingDigest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      },
      run: {
        repository: 'acme/models',
        workflow: GITHUB_RUN.GITHUB_WORKFLOW_REF,
        runId: '4242',
        runAttempt: '2',
        sha: GITHUB_RUN.GITHUB_SHA,
        url: 'https://github.com/acme/models/actions/runs/4242/attempts/2',
      },
      generator: { name: 'mlflow-k8s-deploy' },
    })
    expect(await service(attestedName)).toBeDefined()
  })

  test('an image signed by the trusted key but never attested is refused: nothing applied', async () => {
    const image = deployed.outputs['image']!
    await cosignCli([
      'sign',
      '--yes',
      '--key',
      join(dir, 'c.key'),
      '--tlog-upload=false',
      '--allow-http-registry',
      image,
    ])
    const r = await deploy(refusedName, { 'verify-signature': c.publicPath })
    expect(r.status).not.toBe(0)
    expect(r.errors[0]).toBe(
      `::error::verify signature: ${image} carries no model attestation signed as verify-signature wants (a signature by the public key ${c.publicPath}): deploy images that this action built or reused with sign: true, which attests the model each serves`,
    )
    expect(r.stdout).not.toContain('::group::apply')
    expect(await service(refusedName)).toBeUndefined()
  })

  test('an image whose signed attestation names another version is refused: nothing applied', async () => {
    const image = deployed.outputs['image']!
    const [statement] = await attestations(image)
    const forged = {
      ...statement!.predicate,
      model: { ...statement!.predicate.model, version: '2', runId: 'another-run' },
    }
    const file = join(dir, 'forged.json')
    writeFileSync(file, JSON.stringify(forged))
    await cosignCli([
      'attest',
      '--yes',
      '--key',
      join(dir, 'c.key'),
      '--tlog-upload=false',
      '--allow-http-registry',
      '--type',
      MODEL_ATTESTATION_TYPE,
      '--predicate',
      file,
      image,
    ])
    const mlflow = await versionOne()
    const r = await deploy(refusedName, { 'verify-signature': c.publicPath })
    expect(r.status).not.toBe(0)
    expect(r.errors[0]).toBe(
      `::error::verify signature: the model attestation of ${image} names ${rigEnv('FIXTURE_MODEL')} v2 (run another-run), not ${rigEnv('FIXTURE_MODEL')} v1 (run ${mlflow.run_id}), which is being deployed (version, run differ): the image serves another model`,
    )
    expect(await service(refusedName)).toBeUndefined()
  })
})
