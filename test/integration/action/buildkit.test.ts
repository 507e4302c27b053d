// The bundled action with a BuildKit builder, as a job runs it after docker/setup-buildx-action:
// the `builder` input names a buildx builder (the rig's buildkitd through the `remote` driver)
// created in the job's Docker config. The push is an OCI index with a provenance attestation; the
// action deploys the index digest, the real node's kubelet pulls it and the revision answers; the
// index digest is what gets signed and attested.
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { registryManifest } from '../image/buildkit-builder.js'
import { registerWithOwnRequirements } from '../image/helpers.js'
import { deleteRegisteredModel } from '../mlflow/helpers.js'
import { rigEnv } from '../rig-env.js'
import {
  buildkitService,
  predict,
  pyfuncPrediction,
  rigInputs,
  runAction,
  type ActionRun,
  expectSuccess,
  servicePods,
} from './run-action.js'

const run = promisify(execFile)
const MODEL = () => rigEnv('FIXTURE_MODEL')
const RUN = Date.now().toString(36)
// Per run: a Service of an earlier run may still have terminating pods under the same labels.
const NAME = `e2e-wine-bk-${RUN}`
const REPOSITORY = `e2e-wine-bk-${RUN}`

describe('knative with the BuildKit builder (builder input)', () => {
  const service = buildkitService(NAME, () => ({
    'image-repository': `${rigEnv('REGISTRY')}/${REPOSITORY}`,
    'model-uri': `models:/${MODEL()}/1`,
  }))
  const deploy = (version: string, extra: Record<string, string> = {}) =>
    service.deploy({ 'model-uri': `models:/${MODEL()}/${version}`, ...extra })

  let first: ActionRun
  test('builds an index with attestations, deploys the index digest, the node pulls it and it answers', async () => {
    first = await deploy('1')
    expectSuccess(first)
    const digest = first.outputs['digest']!
    expect(first.stdout).toContain(`building with "${rigEnv('BUILDKIT_BUILDER')}" instance using remote driver`)
    expect(first.outputs['image']).toBe(`${rigEnv('REGISTRY')}/${REPOSITORY}@${digest}`)

    // What the tag holds is an index (image + attestation manifest), and its digest is the one deployed.
    const tag = new RegExp(`built and pushed [^ ]+/${REPOSITORY}:(\\S+) \\(`).exec(first.stdout)?.[1] ?? ''
    const top = await registryManifest(REPOSITORY, tag)
    expect(top.digest).toBe(digest)
    expect(top.manifest.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(
      top.manifest.manifests?.map((m) => m.annotations?.['vnd.docker.reference.type'] ?? m.platform?.architecture),
    ).toEqual(['amd64', 'attestation-manifest'])

    expect(await predict(first.outputs['url']!, NAME)).toEqual(pyfuncPrediction('1'))
    // The kubelet pulled the image by the index digest and runs it.
    const running = await servicePods(NAME)
    expect(running.images).toContain(`${rigEnv('REGISTRY')}/${REPOSITORY}@${digest}`)
    expect(running.ready.length).toBeGreaterThan(0)
    expect(running.ready.every((r) => r === 'true')).toBe(true)
  })

  test('the same version again: a cache hit through the index, same digest, same revision', async () => {
    const again = await deploy('1')
    expectSuccess(again)
    expect(again.outputs['cache-hit']).toBe('true')
    expect(again.outputs['digest']).toBe(first.outputs['digest'])
    expect(again.outputs['revision']).toBe(first.outputs['revision'])
    expect(again.stdout).not.toContain('model files downloaded')
  })

  test('sign: true signs the index digest and attests its model; verify-signature lets it deploy', async () => {
    const keys = mkdtempSync(join(tmpdir(), 'bk-signing-'))
    await run(rigEnv('COSIGN_BIN'), ['generate-key-pair', '--output-key-prefix', join(keys, 'k')], {
      env: { ...process.env, COSIGN_PASSWORD: 'bk-pw' },
    })
    const signed = await service.deploy(
      { sign: 'true', 'signing-key': join(keys, 'k.key'), 'verify-signature': join(keys, 'k.pub') },
      { COSIGN_PASSWORD: 'bk-pw', PATH: `${dirname(rigEnv('COSIGN_BIN'))}:${process.env['PATH'] ?? ''}` },
    )
    expectSuccess(signed)
    const index = `${rigEnv('REGISTRY')}/${REPOSITORY}@${first.outputs['digest']}`
    expect(signed.outputs['image']).toBe(index)
    expect(signed.stdout).toContain(`sign image: signed ${index} with signing-key`)
    expect(signed.stdout).toContain(
      `verify signature: the signature of ${index} verified (public key); its model attestation names ${MODEL()} v1`,
    )
    // The signature and the attestation are about the index itself (what the pod references), not a platform manifest.
    const hex = first.outputs['digest']!.replace('sha256:', '')
    expect((await registryManifest(REPOSITORY, `sha256-${hex}.sig`)).manifest.mediaType).toBe(
      'application/vnd.oci.image.manifest.v1+json',
    )
    expect((await registryManifest(REPOSITORY, `sha256-${hex}.att`)).manifest.mediaType).toBe(
      'application/vnd.oci.image.manifest.v1+json',
    )
    await run(rigEnv('COSIGN_BIN'), [
      'verify',
      '--key',
      join(keys, 'k.pub'),
      '--insecure-ignore-tlog=true',
      '--allow-http-registry',
      index,
    ])
    expect(await predict(signed.outputs['url']!, NAME)).toEqual(pyfuncPrediction('1'))
  })

  test('sbom and provenance: mode=max through the bundle: the deployed index carries an SPDX SBOM and SLSA provenance', async () => {
    const r = await deploy('2', {
      sbom: rigEnv('SBOM_GENERATOR_IMAGE'),
      provenance: 'mode=max',
      wait: 'false',
      'smoke-test': 'false',
    })
    expectSuccess(r)
    const index = await registryManifest(REPOSITORY, r.outputs['digest']!)
    expect(index.manifest.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    const attestation = index.manifest.manifests!.find(
      (m) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest',
    )!
    const layers = (await registryManifest(REPOSITORY, attestation.digest)).manifest.layers ?? []
    expect(layers.map((l) => l.annotations?.['in-toto.io/predicate-type']).sort()).toEqual([
      'https://slsa.dev/provenance/v1',
      'https://spdx.dev/Document',
    ])
  })

  test('compression: zstd: a model with new requirements gets zstd layers, and the real node pulls and serves it', async () => {
    // wine-classifier v1's files with one more requirement, unique to this run (an always-true marker):
    // its requirements layer is new to the builder, so BuildKit compresses it rather than reusing a blob.
    const model = `e2e-zstd-${RUN}`
    await registerWithOwnRequirements(model, `mk8sd-${RUN}`, ['1'])
    const r = await deploy('1', { 'model-uri': `models:/${model}/1`, compression: 'zstd' }).finally(() =>
      deleteRegisteredModel(model),
    )
    expectSuccess(r)
    expect(r.stdout).not.toContain('was pushed with gzip layers only')
    const index = await registryManifest(REPOSITORY, r.outputs['digest']!)
    const amd64 = index.manifest.manifests!.find((m) => m.platform?.architecture === 'amd64')!
    const layers = (await registryManifest(REPOSITORY, amd64.digest)).manifest.layers ?? []
    // The largest layer this build made is the requirements one: zstd.
    const requirements = layers.slice(-4).reduce((a, b) => ((b.size ?? 0) > (a.size ?? 0) ? b : a))
    expect(requirements.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd')
    expect(requirements.size).toBeGreaterThan(10 << 20)

    const running = await servicePods(NAME)
    expect(running.images).toContain(`${rigEnv('REGISTRY')}/${REPOSITORY}@${r.outputs['digest']}`)
    expect(await predict(r.outputs['url']!, NAME)).toEqual(pyfuncPrediction('1'))
  })

  test('cache-to with the docker driver (no builder input) fails with the fix, and nothing is applied', async () => {
    const r = await runAction(
      {
        ...rigInputs(),
        'image-repository': `${rigEnv('REGISTRY')}/${REPOSITORY}-docker`,
        'model-uri': `models:/${MODEL()}/1`,
        target: 'knative',
        name: `${NAME}-docker`,
        'cache-to': `type=registry,ref=${rigEnv('REGISTRY')}/${REPOSITORY}:buildcache`,
      },
      { DOCKER_CONFIG: service.dockerConfig() },
    )
    expect(r.status).not.toBe(0)
    expect(r.errors.join('\n')).toMatch(
      /the docker driver cannot export a build cache \(cache-to\): use a BuildKit builder/,
    )
    expect(r.stdout).not.toMatch(/^apply: /m)
  })
})
