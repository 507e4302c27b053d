// The rig part multiarch (parts/multiarch.sh) against the real kernel, BuildKit and registry:
// QEMU's aarch64 handler is in binfmt_misc with the F flag, BuildKit runs an arm64 RUN step with
// it, and the multi-platform kserve base is an index of the amd64 kserve base and an arm64 image.
import { readFile, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { actionsExec } from '../../../src/image/exec.js'
import { dockerEnv } from '../image/helpers.js'
import { buildkitDockerConfig, registryBlobJson, registryManifest } from '../image/buildkit-builder.js'
import { rigEnv } from '../rig-env.js'

const SLOW = 300_000

test('binfmt_misc: qemu-aarch64 enabled, with the F flag (the emulator opened at registration)', async () => {
  const handler = await readFile('/proc/sys/fs/binfmt_misc/qemu-aarch64', 'utf8')
  expect(handler).toMatch(/^enabled$/m)
  expect(handler).toMatch(/^flags: [A-Z]*F[A-Z]*$/m)
})

test('the multi-platform kserve base: the amd64 kserve base itself and an arm64 image, in one index', async () => {
  const ref = rigEnv('KSERVE_BASE_IMAGE_MULTI')
  const repo = ref.slice(ref.indexOf('/') + 1, ref.lastIndexOf(':'))
  const top = await registryManifest(repo, ref.slice(ref.lastIndexOf(':') + 1))
  expect(top.digest).toBe(rigEnv('KSERVE_BASE_IMAGE_MULTI_DIGEST'))
  const byArch = Object.fromEntries((top.manifest.manifests ?? []).map((m) => [m.platform?.architecture, m.digest]))
  expect(Object.keys(byArch).sort()).toEqual(['amd64', 'arm64'])
  // The same amd64 manifest other tests pin: not a rebuild.
  expect(byArch.amd64).toBe(rigEnv('KSERVE_BASE_IMAGE_DIGEST'))
  const arm64 = await registryManifest(repo, byArch.arm64!)
  const config = (await registryBlobJson(repo, arm64.manifest.config!.digest)) as { architecture: string }
  expect(config.architecture).toBe('arm64')
})

test(
  'BuildKit runs an arm64 RUN step under QEMU: the machine it reports is aarch64',
  async () => {
    const config = await buildkitDockerConfig()
    const ctx = await mkdtemp(join(tmpdir(), 'rig-multiarch-'))
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM ${rigEnv('KSERVE_BASE_IMAGE_MULTI')}\nRUN test "$(uname -m)" = aarch64 && python -c "import platform; print('machine', platform.machine())"\n`,
    )
    const res = await actionsExec(
      rigEnv('DOCKER_CLI'),
      [
        'buildx',
        'build',
        '--builder',
        rigEnv('BUILDKIT_BUILDER'),
        '--progress',
        'plain',
        '--platform',
        'linux/arm64',
        '--no-cache',
        ctx,
      ],
      { env: dockerEnv({ DOCKER_CONFIG: config }) },
    )
    expect(res.stderr).toMatch(/^#\d+ [\d.]+ machine aarch64$/m)
    expect(res.exitCode).toBe(0)
  },
  SLOW,
)
