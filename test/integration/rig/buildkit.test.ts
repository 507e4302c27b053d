// The rig's standalone BuildKit (parts/buildkit.sh), against the real daemon: buildx reaches it
// through the `remote` driver, it runs the version the part built, and a build with RUN on the
// host network (the entitlement the daemon grants) pushes to the rig's plain-http registry.
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { docker } from '../image/helpers.js'
import { buildkitDockerConfig, registryManifest } from '../image/buildkit-builder.js'
import { rigEnv } from '../rig-env.js'

const SLOW = 180_000

test(
  'buildx sees the builder: remote driver, running, the BuildKit version the part built',
  async () => {
    const config = await buildkitDockerConfig()
    const out = await docker(['buildx', 'inspect', '--bootstrap', rigEnv('BUILDKIT_BUILDER')], {
      DOCKER_CONFIG: config,
    })
    expect(out).toMatch(/Driver:\s+remote\b/)
    expect(out).toMatch(/Status:\s+running/)
    expect(out).toContain(`BuildKit version: ${rigEnv('BUILDKIT_VERSION')}`)
  },
  SLOW,
)

test(
  'a RUN step on the host network, pushed over http: the registry holds an index with an attestation',
  async () => {
    const config = await buildkitDockerConfig()
    const ctx = await mkdtemp(join(tmpdir(), 'rig-buildkit-'))
    // `RUN` needs a shell: the rig's kserve base has one. The step reads the host's loopback registry.
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM ${rigEnv('KSERVE_BASE_IMAGE')}\nRUN python -c "import urllib.request as u; u.urlopen('http://${rigEnv('REGISTRY')}/v2/').read()"\n`,
    )
    const repo = `rig-test/buildkit-${Date.now().toString(36)}`
    const meta = join(ctx, 'metadata.json')
    await docker(
      [
        'buildx',
        'build',
        '--builder',
        rigEnv('BUILDKIT_BUILDER'),
        '--network',
        'host',
        '--push',
        '--metadata-file',
        meta,
        '-t',
        `${rigEnv('REGISTRY')}/${repo}:1`,
        ctx,
      ],
      { DOCKER_CONFIG: config },
    )
    const top = await registryManifest(repo, '1')
    expect(top.manifest.mediaType).toBe('application/vnd.oci.image.index.v1+json')
    expect(
      top.manifest.manifests?.some((m) => m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest'),
    ).toBe(true)
  },
  SLOW,
)
