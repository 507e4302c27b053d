// The bundled action with `platforms: linux/amd64,linux/arm64`, as a job runs it after
// docker/setup-qemu-action and docker/setup-buildx-action: the rig's BuildKit with QEMU in
// binfmt_misc (parts/multiarch.sh) builds both from the multi-platform kserve base and pushes one
// index; the action deploys the index digest, the real (amd64) node pulls its platform from it and
// the revision answers; a re-run is a cache hit.
import { registryManifest } from '../image/buildkit-builder.js'
import { rigEnv } from '../rig-env.js'
import { buildkitService, expectSuccess, predict, pyfuncPrediction, servicePods, type ActionRun } from './run-action.js'

const MODEL = () => rigEnv('FIXTURE_MODEL')
const RUN = Date.now().toString(36)
const NAME = `e2e-wine-multi-${RUN}`
const REPOSITORY = `e2e-wine-multi-${RUN}`

describe('knative with platforms: linux/amd64,linux/arm64', () => {
  const { deploy } = buildkitService(NAME, () => ({
    'image-repository': `${rigEnv('REGISTRY')}/${REPOSITORY}`,
    'base-image': rigEnv('KSERVE_BASE_IMAGE_MULTI'),
    platforms: 'linux/amd64,linux/arm64',
    'model-uri': `models:/${MODEL()}/1`,
  }))

  let first: ActionRun
  test('builds one index of both platforms, deploys its digest, the amd64 node runs it and it answers', async () => {
    first = await deploy()
    expectSuccess(first)
    const digest = first.outputs['digest']!
    expect(first.outputs['image']).toBe(`${rigEnv('REGISTRY')}/${REPOSITORY}@${digest}`)
    const tag = new RegExp(`built and pushed [^ ]+/${REPOSITORY}:(\\S+) \\(`).exec(first.stdout)?.[1] ?? ''
    const top = await registryManifest(REPOSITORY, tag)
    expect(top.digest).toBe(digest)
    expect(
      top.manifest.manifests
        ?.map((m) => m.annotations?.['vnd.docker.reference.type'] ?? `${m.platform?.os}/${m.platform?.architecture}`)
        .sort(),
    ).toEqual(['attestation-manifest', 'attestation-manifest', 'linux/amd64', 'linux/arm64'])

    expect(await predict(first.outputs['url']!, NAME)).toEqual(pyfuncPrediction('1'))
    expect((await servicePods(NAME)).images).toContain(`${rigEnv('REGISTRY')}/${REPOSITORY}@${digest}`)
  })

  test('the same model and platforms again: a cache hit on the index digest, same revision', async () => {
    const again = await deploy()
    expectSuccess(again)
    expect(again.outputs['cache-hit']).toBe('true')
    expect(again.outputs['digest']).toBe(first.outputs['digest'])
    expect(again.outputs['revision']).toBe(first.outputs['revision'])
  })

  test('the amd64-only kserve base fails the run before building, naming linux/arm64, nothing applied', async () => {
    const r = await deploy({ 'base-image': rigEnv('KSERVE_BASE_IMAGE'), name: `${NAME}-amd64base` })
    expect(r.status).not.toBe(0)
    expect(r.errors.join('\n')).toMatch(
      /the base image \S+kserve-base:\S+ has no linux\/arm64 image \(it holds linux\/amd64\)/,
    )
    // Failed in the plan: no model download, no build.
    expect(r.stdout).not.toMatch(/model files (downloaded|from the cache)/)
    expect(r.stdout).not.toContain('docker buildx build --push')
    expect(r.stdout).not.toMatch(/^apply: /m)
  })
})
