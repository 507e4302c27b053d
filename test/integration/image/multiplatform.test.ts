// Multi-platform serving images on the rig, as a job builds them after docker/setup-qemu-action
// and docker/setup-buildx-action: the rig's BuildKit (parts/buildkit.sh) with QEMU in binfmt_misc
// (parts/multiarch.sh) builds linux/amd64 and linux/arm64 from the multi-platform kserve base and
// pushes one index; the arm64 image really serves (run under QEMU by the rig's dockerd); the cache
// rule needs the same platform set; a base or a builder without a platform fails before building.
import { type ImagePlan } from '../../../src/image/index.js'
import { IDENTITY_LABEL } from '../../../src/image/identity.js'
import { MEDIA } from '../../../src/image/registry.js'
import { rigEnv } from '../rig-env.js'
import { buildkitImages, registryBlobJson, registryManifest, type OciManifest } from './buildkit-builder.js'
import { columnsRequest, docker, freePort, imageDeps, infer, pyfuncPredict, waitReady } from './helpers.js'

// Under QEMU the arm64 half of a cold build installs the model's requirements emulated.
const VERY_SLOW = 1_500_000
const RUN = Date.now().toString(36)
const MODEL = () => rigEnv('FIXTURE_MODEL')
const NAME = `it-multi-wine-${RUN}`
const REPO = () => `${rigEnv('REGISTRY')}/${NAME}`
const BOTH = ['linux/amd64', 'linux/arm64']
const { deps, dockerConfig, plan, build } = buildkitImages(NAME, () => ({
  baseImage: rigEnv('KSERVE_BASE_IMAGE_MULTI'),
  platforms: BOTH,
}))

/** The index's entries as `os/arch` for images and `attestation→<image digest>` for attestations. */
function entries(index: OciManifest): string[] {
  return (index.manifests ?? []).map((m) =>
    m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest'
      ? `attestation→${m.annotations['vnd.docker.reference.digest']}`
      : `${m.platform?.os}/${m.platform?.architecture}`,
  )
}

function imageEntry(index: OciManifest, arch: string) {
  const e = (index.manifests ?? []).find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch)
  if (!e) throw new Error(`no linux/${arch} image in the index: ${entries(index).join(', ')}`)
  return e
}

let v1: { plan: ImagePlan; digest: string; image: string; seconds: number }

describe('linux/amd64 + linux/arm64 with the BuildKit builder and QEMU', () => {
  test(
    'one build pushes an index of both images and their attestations; the build returns the index digest',
    async () => {
      const p = await plan('1')
      expect(p.decision).toBe('build')
      const out = await build('1', p)
      v1 = { plan: p, ...out }

      const top = await registryManifest(NAME, p.tag)
      expect(top.digest).toBe(out.digest)
      expect(out.image).toBe(`${REPO()}@${top.digest}`)
      expect(top.manifest.mediaType).toBe(MEDIA.ociIndex)
      const amd64 = imageEntry(top.manifest, 'amd64')
      const arm64 = imageEntry(top.manifest, 'arm64')
      expect(entries(top.manifest).sort()).toEqual(
        ['linux/amd64', 'linux/arm64', `attestation→${amd64.digest}`, `attestation→${arm64.digest}`].sort(),
      )

      // Each image's config says its platform and carries the same identity (one build, one identity).
      for (const [entry, arch] of [
        [amd64, 'amd64'],
        [arm64, 'arm64'],
      ] as const) {
        const m = await registryManifest(NAME, entry.digest)
        const config = (await registryBlobJson(NAME, m.manifest.config!.digest)) as {
          architecture: string
          os: string
          config: { Labels: Record<string, string> }
        }
        expect(`${config.os}/${config.architecture}`).toBe(`linux/${arch}`)
        expect(config.config.Labels[IDENTITY_LABEL]).toBe(p.identity.digest)
      }
      console.log(`multi-platform (amd64 + arm64 under QEMU) build of version 1: ${out.seconds.toFixed(1)} s`)
    },
    VERY_SLOW,
  )

  test(
    'the same version and platforms again: a cache hit on the index digest',
    async () => {
      const p = await plan('1')
      expect(p.decision).toBe('hit')
      expect(p.digest).toBe(v1.digest)
      expect(p.image).toBe(v1.image)
    },
    VERY_SLOW,
  )

  test(
    'the arm64 image serves: run under QEMU by the rig dockerd, ready, and it predicts what pyfunc predicts',
    async () => {
      const container = `${NAME}-arm64`
      const port = await freePort()
      await docker(['rm', '-f', container]).catch(() => undefined)
      await docker([
        'run',
        '-d',
        '--platform',
        'linux/arm64',
        '--name',
        container,
        '--network',
        'host',
        '-e',
        `HTTP_PORT=${port}`,
        '-e',
        'MLSERVER_MODEL_NAME=wine',
        v1.image,
      ])
      try {
        // What runs is the arm64 image of the index, emulated.
        expect(await docker(['image', 'inspect', '-f', '{{.Architecture}}', v1.image])).toBe('arm64')
        const url = `http://127.0.0.1:${port}`
        const t0 = performance.now()
        await waitReady(`${url}/v2/health/ready`, container, 600_000)
        console.log(`arm64 serving image ready under QEMU in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
        const split = JSON.parse(rigEnv('FIXTURE_PROBE_ROW')) as Record<string, number>
        const columns = Object.keys(split)
        const rows = { columns, data: [columns.map((c) => split[c]!)] }
        const res = await infer({ url, container }, 'wine', columnsRequest(rows))
        expect(res.status).toBe(200)
        const outputs = res.body.outputs as { data: unknown[] }[]
        expect(outputs[0]!.data).toEqual(await pyfuncPredict(`models:/${MODEL()}/1`, rows))
      } finally {
        await docker(['rm', '-f', container]).catch(() => undefined)
      }
    },
    VERY_SLOW,
  )

  test(
    'a new version: amd64 only vs amd64 + arm64, build and rebuild (figures)',
    async () => {
      // amd64 first: its new layer is the model's COPY; then both, where only arm64's COPY is new
      // (the requirements layers of both platforms are cached from version 1).
      const single = await plan('2', { platforms: ['linux/amd64'] })
      expect(single.decision).toBe('build')
      const s = await build('2', single, { platforms: ['linux/amd64'] })
      const sAgain = await build('2', single, { platforms: ['linux/amd64'] })
      const multi = await plan('2')
      expect(multi.decision).toBe('build')
      expect(multi.tag).not.toBe(single.tag)
      const m = await build('2', multi)
      const mAgain = await build('2', multi)
      expect(mAgain.digest).toMatch(/^sha256:/)
      console.log(
        `version 2: amd64 only ${s.seconds.toFixed(1)} s, rebuild ${sAgain.seconds.toFixed(1)} s; ` +
          `amd64 + arm64 ${m.seconds.toFixed(1)} s, rebuild ${mAgain.seconds.toFixed(1)} s`,
      )
    },
    VERY_SLOW,
  )
})

describe('the cache rule over platforms', () => {
  test(
    'a tag holding only amd64 is no hit for amd64 + arm64, whether its identity differs or not',
    async () => {
      // An amd64-only build under a fixed tag, then amd64 + arm64 asked under the same tag: the
      // identity differs (the platforms are in it), so it is rebuilt and the tag moves.
      const tag = `fixed-${RUN}`
      const amd64Plan = await plan('1', { tag, platforms: ['linux/amd64'] })
      expect(amd64Plan.decision).toBe('build')
      await build('1', amd64Plan, { tag, platforms: ['linux/amd64'] })
      expect((await plan('1', { tag, platforms: ['linux/amd64'] })).decision).toBe('hit')
      const both = await plan('1', { tag })
      expect(both.decision).toBe('build')
      expect(both.reason).toMatch(/holds the image of another model/)

      // The multi-platform image's amd64 half alone under a tag (an index of one, as a copy of one
      // platform would make): its labels carry the identity of the amd64 + arm64 build, yet it is
      // no hit for amd64 + arm64.
      const top = await registryManifest(NAME, v1.plan.tag)
      const halfTag = `amd64-half-${RUN}`
      await docker(
        [
          'buildx',
          'imagetools',
          'create',
          '-t',
          `${REPO()}:${halfTag}`,
          `${REPO()}@${imageEntry(top.manifest, 'amd64').digest}`,
        ],
        { DOCKER_CONFIG: dockerConfig() },
      )
      const half = await plan('1', { tag: halfTag })
      expect(half.identity.digest).toBe(v1.plan.identity.digest)
      expect(half.decision).toBe('build')
      expect(half.reason).toMatch(/carries this model's identity but holds no linux\/arm64 image \(only linux\/amd64\)/)
    },
    VERY_SLOW,
  )
})

describe('before the build', () => {
  test(
    'a base without arm64 (the amd64-only kserve base) fails the plan in one line naming the platform and the fix',
    async () => {
      const d = deps()
      const err = await plan('1', { baseImage: rigEnv('KSERVE_BASE_IMAGE'), tag: `amd64-base-${RUN}` }, d).catch(
        (e: Error) => e,
      )
      expect(err).toBeInstanceOf(Error)
      expect((err as Error).message).toBe(
        `the base image ${rigEnv('KSERVE_BASE_IMAGE')} has no linux/arm64 image (it holds linux/amd64): ` +
          'use a base image whose index holds every platform in platforms (build it with docker buildx build --platform <all of them> --push), ' +
          'or remove linux/arm64 from platforms',
      )
    },
    VERY_SLOW,
  )

  test(
    'the docker driver (no builder input) with two platforms fails before building, naming the fix',
    async () => {
      const tag = `docker-driver-${RUN}`
      const p = await plan('1', { tag, builder: undefined })
      expect(p.decision).toBe('build')
      const d = imageDeps()
      await expect(build('1', p, { tag, builder: undefined }, d)).rejects.toThrow(
        /builder "default" uses the docker driver, which builds one platform only: set up a BuildKit builder with docker\/setup-qemu-action and docker\/setup-buildx-action/,
      )
      // Nothing was built: no buildx build ran, and the tag does not exist.
      expect(d.log.lines.join('\n')).not.toContain('docker buildx build')
      await expect(registryManifest(NAME, tag)).rejects.toThrow(/answered 404/)
    },
    VERY_SLOW,
  )
})
