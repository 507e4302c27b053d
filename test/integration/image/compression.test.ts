// Layer compression on the real builders and registry. With `compression: zstd` the rig's BuildKit
// pushes the layers a cold build makes as zstd while the base's keep their gzip; the docker driver
// of the rig's dockerd 20.10 pushes gzip whatever it is asked, and the action says so after reading
// back what the registry holds.
import { parseImageRef } from '../../../src/image/reference.js'
import { rigEnv } from '../rig-env.js'
import { buildkitImages, registryManifest, type OciDescriptor } from './buildkit-builder.js'
import { imageDeps, SLOW } from './helpers.js'

const RUN = Date.now().toString(36)
const NAME = `it-zstd-wine-${RUN}`
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
const { deps, plan, build } = buildkitImages(NAME, () => ({ compression: 'zstd' }))

/** The layers of an image in the open rig registry (of its amd64 image when it is an index). */
async function layers(repository: string, reference: string): Promise<OciDescriptor[]> {
  const top = await registryManifest(repository, reference)
  const child = top.manifest.manifests?.find((m) => m.platform?.architecture === 'amd64')
  const manifest = child ? (await registryManifest(repository, child.digest)).manifest : top.manifest
  return manifest.layers ?? []
}

const warnings = (lines: readonly string[]) => lines.filter((l) => l.startsWith('warning: '))

describe('compression: zstd', () => {
  test(
    "BuildKit, cold: every layer the build makes is zstd, the base's layers are the base's own; no warning",
    async () => {
      const p = await plan('1')
      expect(p.decision).toBe('build')
      const d = deps()
      const out = await build('1', p, {}, d, true)
      const command = `docker buildx build --output type=registry,compression=zstd --tag ${p.ref} `
      expect(d.log.lines.some((l) => l.startsWith(command))).toBe(true)
      expect(warnings(d.log.lines)).toEqual([])

      const image = await layers(NAME, out.digest)
      const base = parseImageRef(rigEnv('KSERVE_BASE_IMAGE'))
      const baseLayers = await layers(base.repository, rigEnv('KSERVE_BASE_IMAGE_DIGEST'))
      // The base's layers are the base's own blobs, still gzip (force-compression is off); only their
      // media type is spelled the OCI way in the OCI manifest.
      expect(image.slice(0, baseLayers.length).map((l) => l.digest)).toEqual(baseLayers.map((l) => l.digest))
      expect(image.slice(0, baseLayers.length).every((l) => /gzip$/.test(l.mediaType))).toBe(true)
      // The install script, the requirements, the server and the model: all zstd.
      const made = image.slice(baseLayers.length)
      expect(made.length).toBeGreaterThanOrEqual(3)
      expect(made.map((l) => l.mediaType)).toEqual(made.map(() => ZSTD))

      // The registry client reads the same list: what the action checks after a push.
      const types = await d.registry.layerMediaTypes({ ...parseImageRef(p.ref), tag: undefined, digest: out.digest })
      expect(types).toEqual(image.map((l) => l.mediaType))
      console.log(
        `cold BuildKit build with zstd: ${out.seconds.toFixed(1)} s; layers made: ${made.map((l) => `${(l.size ?? 0) >> 10} KiB`).join(', ')}`,
      )
    },
    SLOW,
  )

  test(
    'the docker driver pushes gzip whatever it is asked: the image is pushed and the action warns, naming the fix',
    async () => {
      const tag = `docker-driver-${RUN}`
      const p = await plan('1', { tag, builder: undefined })
      const d = imageDeps()
      const out = await build('1', p, { tag, builder: undefined }, d)
      const image = await layers(NAME, out.digest)
      expect(image.some((l) => /zstd$/.test(l.mediaType))).toBe(false)
      expect(image.map((l) => l.mediaType)).toContain('application/vnd.docker.image.rootfs.diff.tar.gzip')
      expect(warnings(d.log.lines)).toEqual([
        `warning: compression: zstd was asked, but ${p.ref} was pushed with gzip layers only: the docker driver with Docker's classic image store compresses with gzip whatever it is asked, ` +
          'and a BuildKit builder reuses the gzip blobs of layers it exported before. Use a BuildKit builder (docker/setup-buildx-action, then its name in the builder input); its new layers are zstd',
      ])
    },
    SLOW,
  )
})
