// The image stage with a BuildKit builder of its own (the rig's buildkitd through a buildx
// `remote` builder), as on a GitHub runner after docker/setup-buildx-action: the push is an OCI
// index holding the image and its provenance attestation, the plan reads the labels through the
// index, and a registry cache exported by one builder is imported by a cold one.
import { planServingImage, type ImagePlan } from '../../../src/image/index.js'
import { MEDIA } from '../../../src/image/registry.js'
import { parseImageRef } from '../../../src/image/reference.js'
import { rigEnv } from '../rig-env.js'
import { buildkitDockerConfig, buildkitImages, registryBlobJson, registryManifest } from './buildkit-builder.js'
import { docker, imageDeps, inspectModel, mlflowClient, modelFacts, SLOW } from './helpers.js'

const RUN = Date.now().toString(36)
const MODEL = () => rigEnv('FIXTURE_MODEL')
const NAME = `it-bk-wine-${RUN}`
const REPO = () => `${rigEnv('REGISTRY')}/${NAME}`
const CACHE = () => `${REPO()}:buildcache`
const BUILDER = () => rigEnv('BUILDKIT_BUILDER')
const { http, deps, inputs, dockerConfig, plan, build } = buildkitImages(NAME)

/** The build log without the logger's level prefix. */
const plain = (lines: readonly string[]) => lines.map((l) => l.replace(/^(debug|info): /, ''))

let v1: { plan: ImagePlan; digest: string; image: string }

describe('the BuildKit builder', () => {
  test(
    'version 1: the registry holds an index of the image and its provenance attestation; the build returns the index digest',
    async () => {
      const p = await plan('1')
      expect(p.decision).toBe('build')
      const d = deps()
      const out = await build('1', p, { cacheTo: [`type=registry,ref=${CACHE()},mode=max`] }, d)
      v1 = { plan: p, ...out }
      expect(plain(d.log.lines).join('\n')).toContain(`building with "${BUILDER()}" instance using remote driver`)

      const top = await registryManifest(NAME, p.tag)
      expect(top.digest).toBe(out.digest)
      expect(out.image).toBe(`${REPO()}@${top.digest}`)
      expect(top.manifest.mediaType).toBe(MEDIA.ociIndex)
      const children = top.manifest.manifests ?? []
      const image = children.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64')
      const attestation = children.find((m) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest')
      expect(image).toBeDefined()
      expect(attestation?.annotations?.['vnd.docker.reference.digest']).toBe(image!.digest)
      // The attestation manifest's layer is an in-toto statement: SLSA provenance of this build.
      const att = await registryManifest(NAME, attestation!.digest)
      const layer = att.manifest.layers?.find((l) => l.mediaType === 'application/vnd.in-toto+json')
      expect(layer?.annotations?.['in-toto.io/predicate-type']).toMatch(/^https:\/\/slsa\.dev\/provenance\//)
      const statement = (await registryBlobJson(NAME, layer!.digest)) as { subject: { digest: { sha256: string } }[] }
      expect(`sha256:${statement.subject[0]!.digest.sha256}`).toBe(image!.digest)

      // The exported registry cache is there too.
      expect((await registryManifest(NAME, 'buildcache')).digest).toMatch(/^sha256:/)
      console.log(`BuildKit build of version 1 with cache export: ${out.seconds.toFixed(1)} s`)
    },
    SLOW,
  )

  test(
    'the same version again: the plan reads the labels through the index and hits on the index digest',
    async () => {
      const p = await plan('1')
      expect(p.decision).toBe('hit')
      expect(p.digest).toBe(v1.digest)
      expect(p.image).toBe(v1.image)
      // The labels came from the platform manifest's config, not from the index.
      const remote = await deps().registry.inspect(parseImageRef(p.ref))
      const top = await registryManifest(NAME, p.tag)
      const amd64 = top.manifest.manifests!.find((m) => m.platform?.architecture === 'amd64')!
      expect(remote?.digest).toBe(v1.digest)
      expect(remote?.platformDigest).toBe(amd64.digest)
      expect(remote?.labels['mlflow-k8s-deploy.identity']).toBe(p.identity.digest)
    },
    SLOW,
  )

  test(
    'registry cache: a cold builder imports what the first build exported and reuses the requirements layer',
    async () => {
      // A job's builder starts empty: drop everything this one holds.
      await docker(['buildx', 'prune', '--builder', BUILDER(), '--all', '--force'], { DOCKER_CONFIG: dockerConfig() })
      const p = await plan('2')
      expect(p.decision).toBe('build')
      const d = deps()
      const out = await build('2', p, { cacheFrom: [`type=registry,ref=${CACHE()}`] }, d)
      expect(out.digest).not.toBe(v1.digest)
      const lines = plain(d.log.lines)
      expect(lines.join('\n')).toContain(`importing cache manifest from ${CACHE()}`)
      const step = lines.map((l) => /^#(\d+) \[.*install\.sh -r/.exec(l)?.[1]).find(Boolean)
      expect(step).toBeDefined()
      expect(lines).toContain(`#${step} CACHED`)
      console.log(`cold BuildKit builder, version 2 from the registry cache: ${out.seconds.toFixed(1)} s`)
    },
    SLOW,
  )
})

describe('the BuildKit builder and the Basic-auth registry', () => {
  test(
    "the builder pushes with the job's login (its session carries the Docker config's credentials); the plan then hits",
    async () => {
      const config = await buildkitDockerConfig(rigEnv('DOCKER_CONFIG_AUTH'))
      const repository = `${rigEnv('REGISTRY_AUTH')}/${NAME}`
      const authDeps = () => imageDeps({ dockerConfig: config })
      const details = await inspectModel(mlflowClient(http), `models:/${MODEL()}/1`)
      const image = inputs({ repository })
      const p = await planServingImage(authDeps(), { image, model: modelFacts(details), generatorVersion: '0.1.0-it' })
      expect(p.decision).toBe('build')
      const out = await build('1', p, { repository }, authDeps())
      expect(out.image).toBe(`${repository}@${out.digest}`)
      const again = await planServingImage(authDeps(), {
        image,
        model: modelFacts(details),
        generatorVersion: '0.1.0-it',
      })
      expect(again.decision).toBe('hit')
      expect(again.digest).toBe(out.digest)
    },
    SLOW,
  )
})

describe('the docker driver', () => {
  test(
    'cache-to fails before building, naming cache-to and the BuildKit builder as the fix',
    async () => {
      const p = await plan('1', { tag: `docker-driver-${RUN}`, builder: undefined })
      await expect(
        build(
          '1',
          p,
          { tag: `docker-driver-${RUN}`, builder: undefined, cacheTo: [`type=registry,ref=${CACHE()}-x`] },
          imageDeps(),
        ),
      ).rejects.toThrow(/the docker driver cannot export a build cache \(cache-to\): use a BuildKit builder/)
    },
    SLOW,
  )
})
