// The rig's standalone BuildKit (parts/buildkit.sh) as a job sees it after
// docker/setup-buildx-action: a builder created in the job's Docker config, named by the
// action's `builder` input. Plus raw reads of what the registry holds.
import { copyFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ImageInputs } from '../../../src/inputs.js'
import { MEDIA } from '../../../src/image/registry.js'
import { rigEnv } from '../rig-env.js'
import { docker, fixtureImages, imageDeps, imageInputs, RecordingTransport } from './helpers.js'

/**
 * A new Docker config dir holding the buildx builder BUILDKIT_BUILDER on the rig's buildkitd;
 * `login` copies in the config.json of another dir (its registry logins), as docker/login-action
 * and setup-buildx-action share one in a job.
 */
export async function buildkitDockerConfig(login?: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'it-buildkit-config-'))
  if (login) await copyFile(join(login, 'config.json'), join(dir, 'config.json'))
  await docker(
    ['buildx', 'create', '--name', rigEnv('BUILDKIT_BUILDER'), '--driver', 'remote', rigEnv('BUILDKIT_ADDR')],
    {
      DOCKER_CONFIG: dir,
    },
  )
  return dir
}

/**
 * One suite's images of the fixture model on the rig's BuildKit: the builder's Docker config (made
 * in the suite's beforeAll), the kserve inputs for `${REGISTRY}/<name>` with `defaults`, and the
 * plan and build of fixtureImages.
 */
export function buildkitImages(name: string, defaults: () => Partial<ImageInputs> = () => ({}), model?: () => string) {
  const http = new RecordingTransport()
  let dockerConfig = ''
  beforeAll(async () => {
    dockerConfig = await buildkitDockerConfig()
  })
  afterAll(() => http.close())
  const deps = () => imageDeps({ dockerConfig })
  const inputs = (over: Partial<ImageInputs> = {}) =>
    imageInputs({
      runtime: 'kserve',
      repository: `${rigEnv('REGISTRY')}/${name}`,
      builder: rigEnv('BUILDKIT_BUILDER'),
      ...defaults(),
      ...over,
    })
  return { http, deps, inputs, dockerConfig: () => dockerConfig, ...fixtureImages({ http, inputs, deps, model }) }
}

export interface OciDescriptor {
  readonly mediaType: string
  readonly digest: string
  readonly size?: number
  readonly platform?: { readonly os: string; readonly architecture: string }
  readonly annotations?: Record<string, string>
}

export interface OciManifest {
  readonly mediaType?: string
  readonly manifests?: OciDescriptor[]
  readonly config?: OciDescriptor
  readonly layers?: OciDescriptor[]
}

/** GET a manifest from the open rig registry by tag or digest: its digest and its document. */
export async function registryManifest(
  repository: string,
  reference: string,
): Promise<{ digest: string; manifest: OciManifest }> {
  const accept = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ')
  const res = await fetch(`http://${rigEnv('REGISTRY')}/v2/${repository}/manifests/${reference}`, {
    headers: { accept },
  })
  if (!res.ok) throw new Error(`GET ${repository}:${reference} answered ${res.status}`)
  return { digest: res.headers.get('docker-content-digest')!, manifest: (await res.json()) as OciManifest }
}

/** A blob of the open rig registry, as JSON. */
export async function registryBlobJson(repository: string, digest: string): Promise<unknown> {
  const res = await fetch(`http://${rigEnv('REGISTRY')}/v2/${repository}/blobs/${digest}`)
  if (!res.ok) throw new Error(`GET blob ${digest} answered ${res.status}`)
  return res.json()
}
