import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import {
  Buildx,
  buildxArgs,
  compressionProblem,
  digestFromMetadata,
  explainBuildFailure,
  stepOutput,
  type Attestations,
  type Compression,
} from '../../../src/image/buildx.js'
import type { Exec } from '../../../src/image/exec.js'
import { MemoryLogger } from '../../support/memory-logger.js'

const fixture = (name: string) => readFileSync(new URL(`./fixtures/buildx-${name}.log`, import.meta.url), 'utf8')
const CTX = {
  baseImage: '127.0.0.1:5001/mlserver-base:1.7.1-py3.11',
  tags: ['127.0.0.1:5002/wine:v1-abc'],
  dockerHost: 'unix:///tmp/nosuch.sock',
}

describe('buildxArgs', () => {
  test('every option, in a stable order', () => {
    expect(
      buildxArgs({
        context: '/ctx',
        dockerfile: '/ctx/Dockerfile',
        tags: ['r/wine:v1'],
        metadataFile: '/tmp/m.json',
        push: true,
        platforms: ['linux/amd64', 'linux/arm64'],
        buildArgs: { MODEL_NAME: 'wine', BASE_IMAGE: 'b@sha256:x' },
        labels: { 'z.z': '1', 'a.a': 'two words' },
        cacheFrom: ['type=gha'],
        cacheTo: ['type=gha,mode=max'],
        network: 'host',
        builder: 'ci',
      }),
    ).toEqual([
      'buildx',
      'build',
      '--progress',
      'plain',
      '--builder',
      'ci',
      '--file',
      '/ctx/Dockerfile',
      '--platform',
      'linux/amd64,linux/arm64',
      '--build-arg',
      'BASE_IMAGE=b@sha256:x',
      '--build-arg',
      'MODEL_NAME=wine',
      '--label',
      'a.a=two words',
      '--label',
      'z.z=1',
      '--cache-from',
      'type=gha',
      '--cache-to',
      'type=gha,mode=max',
      '--network',
      'host',
      '--metadata-file',
      '/tmp/m.json',
      '--push',
      '--tag',
      'r/wine:v1',
      '/ctx',
    ])
  })

  test('the minimum: no platform, no cache, no push', () => {
    expect(
      buildxArgs({
        context: '.',
        dockerfile: 'Dockerfile',
        tags: ['t'],
        metadataFile: 'm',
        push: false,
        platforms: [],
        buildArgs: {},
        labels: {},
        cacheFrom: [],
        cacheTo: [],
      }),
    ).toEqual([
      'buildx',
      'build',
      '--progress',
      'plain',
      '--file',
      'Dockerfile',
      '--metadata-file',
      'm',
      '--tag',
      't',
      '.',
    ])
  })
})

test.each([
  ['{"containerimage.digest":"sha256:' + 'a'.repeat(64) + '"}', 'sha256:' + 'a'.repeat(64)],
  ['{"containerimage.config.digest":"sha256:' + 'a'.repeat(64) + '"}', undefined],
  ['{"containerimage.digest":"nope"}', undefined],
  ['', undefined],
])('digestFromMetadata(%s)', (text, digest) => {
  expect(digestFromMetadata(text)).toBe(digest)
})

/** The least a build asks: one tag, pushed, nothing else. */
const MIN = {
  context: '.',
  dockerfile: 'Dockerfile',
  tags: ['t'],
  metadataFile: 'm',
  push: true,
  platforms: [],
  buildArgs: {},
  labels: {},
  cacheFrom: [],
  cacheTo: [],
}

describe('buildxArgs: attestations', () => {
  const attestArgs = (args: string[]) => args.slice(args.indexOf('Dockerfile') + 1, args.indexOf('--metadata-file'))
  test.each<[string, Attestations | undefined, string[]]>([
    ["none asked: BuildKit's defaults", undefined, []],
    ['sbom with the default generator', { sbom: true }, ['--sbom=true']],
    [
      'sbom with a generator image',
      { sbom: '127.0.0.1:5001/sbom-scanner:1' },
      ['--attest', 'type=sbom,generator=127.0.0.1:5001/sbom-scanner:1'],
    ],
    ['provenance off', { provenance: 'false' }, ['--provenance=false']],
    ['provenance max', { provenance: 'mode=max' }, ['--provenance=mode=max']],
    ['both', { sbom: true, provenance: 'mode=min' }, ['--sbom=true', '--provenance=mode=min']],
  ])('%s', (_name, attestations, expected) => {
    expect(attestArgs(buildxArgs({ ...MIN, attestations }))).toEqual(expected)
  })
})

describe('buildxArgs: compression', () => {
  const output = (args: string[]) => args.slice(args.indexOf('m') + 1, args.indexOf('--tag'))
  test.each<[string, Compression | undefined, boolean, string[]]>([
    ["not asked: buildx's --push (gzip)", undefined, true, ['--push']],
    ['gzip: the same --push', 'gzip', true, ['--push']],
    [
      'zstd: the registry output with its compression',
      'zstd',
      true,
      ['--output', 'type=registry,compression=zstd,oci-mediatypes=true'],
    ],
    ['zstd without a push: no output', 'zstd', false, []],
  ])('%s', (_name, compression, push, expected) => {
    expect(output(buildxArgs({ ...MIN, push, compression }))).toEqual(expected)
  })
})

describe('buildxArgs: push by digest (the build before an SBOM is attached)', () => {
  const after = (args: string[]) => args.slice(args.indexOf('m') + 1)
  test.each<[string, Compression | undefined, string[]]>([
    ['untagged, to the repository', undefined, ['--output', 'type=registry,name=r/wine,push-by-digest=true', '.']],
    [
      'with zstd',
      'zstd',
      ['--output', 'type=registry,name=r/wine,push-by-digest=true,compression=zstd,oci-mediatypes=true', '.'],
    ],
  ])('%s: no --tag', (_name, compression, expected) => {
    expect(after(buildxArgs({ ...MIN, context: '.', push: true, compression, pushByDigest: 'r/wine' }))).toEqual(
      expected,
    )
  })
})

describe('compressionProblem: what the registry holds after a push that asked for zstd', () => {
  const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip'
  const ZS = 'application/vnd.oci.image.layer.v1.tar+zstd'
  const DOCKER_GZ = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
  test.each<[string, Compression | undefined, string[], boolean]>([
    ['gzip asked, gzip pushed', 'gzip', [GZ, GZ], false],
    ['nothing asked', undefined, [DOCKER_GZ], false],
    ["zstd asked: the base's gzip layers and this build's zstd ones", 'zstd', [GZ, GZ, ZS, ZS], false],
    [
      'zstd asked, docker media types with zstd',
      'zstd',
      [DOCKER_GZ, 'application/vnd.docker.image.rootfs.diff.tar.zstd'],
      false,
    ],
    ['zstd asked, gzip only (the docker driver, or every layer from the cache)', 'zstd', [DOCKER_GZ, DOCKER_GZ], true],
    ['zstd asked, no layer read', 'zstd', [], true],
  ])('%s', (_name, asked, types, problem) => {
    const msg = compressionProblem(asked, 'r/wine:v1', types)
    expect(msg !== undefined).toBe(problem)
    if (msg) {
      expect(msg).toMatch(/^compression: zstd was asked, but r\/wine:v1 was pushed with gzip layers only: /)
      expect(msg).toMatch(/Use a BuildKit builder \(docker\/setup-buildx-action, then its name in the builder input\)/)
      expect(msg.split('\n')).toHaveLength(1)
    }
  })
})

describe('explainBuildFailure on recorded buildx output (buildx 0.13, dockerd 20.10)', () => {
  test.each<[string, number, RegExp]>([
    ['missing-build', 125, /docker buildx is not installed/],
    ['missing', 1, /docker buildx is not installed: add docker\/setup-buildx-action .* docker-buildx package/],
    ['nodaemon', 1, /Docker daemon is not running or not reachable at DOCKER_HOST=unix:\/\/\/tmp\/nosuch.sock/],
    ['pipfail-nonet', 1, /no bridge network .* network "host"/],
    ['basemissing', 1, /base image 127.0.0.1:5001\/mlserver-base:1.7.1-py3.11 could not be pulled.*not found/],
    ['pushdenied', 1, /pushing 127.0.0.1:5002\/wine:v1-abc was refused: log in .*no basic auth credentials/],
    [
      'oauth400-buildkit',
      1,
      /^pushing 127.0.0.1:5002\/wine:v1-abc failed: the registry's token service \(http:\/\/127.0.0.1:5004\/token\/\) refused BuildKit's OAuth2 password grant with HTTP 400, .* identity token .* docker driver/,
    ],
    ['cacheexport-docker', 1, /docker driver cannot export a build cache \(cache-to\): use a BuildKit builder/],
    ['nobuilder', 1, /no buildx builder named "nosuch" .* builder input/],
    [
      'attest-docker',
      1,
      /^attestations: the docker driver cannot attach SBOM or provenance attestations: use a BuildKit builder/,
    ],
  ])('%s', (name, code, message) => {
    expect(explainBuildFailure(code, fixture(name), CTX)).toMatch(message)
  })

  test.each<[Attestations, RegExp]>([
    [{ sbom: true }, /^sbom: true: the docker driver cannot attach/],
    [{ provenance: 'mode=max' }, /^provenance: mode=max: the docker driver cannot attach/],
    [{ sbom: 'r/scanner:1', provenance: 'mode=min' }, /^sbom: r\/scanner:1 and provenance: mode=min: the docker/],
  ])('the docker driver refusing attestations names the inputs that asked: %j', (attestations, message) => {
    const msg = explainBuildFailure(1, fixture('attest-docker'), { ...CTX, attestations })
    expect(msg).toMatch(message)
    expect(msg).toMatch(
      /docker\/setup-buildx-action, then its name in the builder input\) or Docker's containerd image store$/,
    )
    expect(msg.split('\n')).toHaveLength(1)
  })

  test('pip failure shows the end of pip’s own error, not BuildKit’s noise', () => {
    const msg = explainBuildFailure(1, fixture('pipfail'), CTX)
    expect(msg).toMatch(/^the model's requirements failed to install/)
    expect(msg).toContain('ERROR: Could not find a version that satisfies the requirement nosuchpkg-zz==9.9.9')
    expect(msg).toContain('ERROR: No matching distribution found for nosuchpkg-zz==9.9.9')
    expect(msg).not.toContain('Requirement already satisfied')
    expect(msg).not.toContain('executor failed')
  })

  test('newer BuildKit wording for a failed pip step', () => {
    const log = [
      '#8 [3/5] RUN set -e; python -m pip install -r /opt/mlflow-k8s-deploy/requirements.txt',
      '#8 3.1 ERROR: Cannot install scikit-learn==0.1 and numpy==2.4 because these package versions have conflicting dependencies.',
      '#8 ERROR: process "/bin/sh -c set -e; python -m pip install -r /opt/mlflow-k8s-deploy/requirements.txt" did not complete successfully: exit code: 1',
      'ERROR: failed to solve: process "/bin/sh -c set -e; python -m pip install -r /opt/mlflow-k8s-deploy/requirements.txt" did not complete successfully: exit code: 1',
    ].join('\n')
    expect(explainBuildFailure(1, log, CTX)).toMatch(/requirements failed to install[^]*conflicting dependencies/)
  })

  test.each<[string, number, RegExp]>([
    ['Unable to locate executable file: docker', 127, /docker CLI was not found/],
    ["docker: 'buildx' is not a docker command.", 1, /buildx is not installed/],
    [
      'ERROR: failed to solve: failed to push r/wine:v1: denied: requested access to the resource is denied',
      1,
      /was refused/,
    ],
    ['ERROR: multiple platforms feature is currently not supported for docker driver', 1, /one platform only/],
    [
      // BuildKit's own words when its daemon does not grant the entitlement (util/entitlements).
      'ERROR: failed to solve: granting entitlement network.host is not allowed by build daemon configuration',
      1,
      /does not allow RUN steps on the host network .*--allow-insecure-entitlement network.host/,
    ],
    ['ERROR: something else entirely', 2, /failed with exit code 2: ERROR: something else entirely/],
  ])('%s', (log, code, message) => {
    expect(explainBuildFailure(code, log, CTX)).toMatch(message)
  })
})

test('stepOutput keeps only the marked step’s command output', () => {
  expect(stepOutput(fixture('pipfail'), 'pip install')).toEqual([
    'Requirement already satisfied: mlserver==1.7.1 in /opt/venv/lib/python3.11/site-packages (1.7.1)',
    'Requirement already satisfied: mlserver-mlflow==1.7.1 in /opt/venv/lib/python3.11/site-packages (1.7.1)',
    'ERROR: Could not find a version that satisfies the requirement nosuchpkg-zz==9.9.9 (from versions: none)',
    'ERROR: No matching distribution found for nosuchpkg-zz==9.9.9',
  ])
})

describe('Buildx with a fake exec', () => {
  const options = {
    context: '/ctx',
    dockerfile: '/ctx/Dockerfile',
    tags: ['127.0.0.1:5001/wine:v1'],
    platforms: [],
    buildArgs: {},
    labels: {},
    cacheFrom: [],
    cacheTo: [],
    baseImage: 'base',
  }

  test('reads the digest from the metadata file and passes the docker env', async () => {
    const calls: { args: readonly string[]; env?: Readonly<Record<string, string>> }[] = []
    const exec: Exec = async (_cmd, args, opts) => {
      calls.push({ args, env: opts?.env })
      const file = args[args.indexOf('--metadata-file') + 1]!
      await writeFile(file, JSON.stringify({ 'containerimage.digest': 'sha256:' + 'c'.repeat(64) }))
      return { exitCode: 0, stdout: '', stderr: '' }
    }
    const b = new Buildx({ exec, log: new MemoryLogger(), env: { DOCKER_HOST: 'unix:///x.sock' } })
    await expect(b.build(options)).resolves.toMatchObject({ digest: 'sha256:' + 'c'.repeat(64) })
    expect(calls[0]!.env).toEqual({ DOCKER_HOST: 'unix:///x.sock' })
    expect(calls[0]!.args).toContain('--push')
  })

  test('a failed build throws the explained message', async () => {
    const exec: Exec = async () => ({ exitCode: 1, stdout: '', stderr: fixture('pushdenied') })
    const b = new Buildx({ exec, log: new MemoryLogger() })
    await expect(b.build(options)).rejects.toThrow(/pushing 127.0.0.1:5001\/wine:v1 was refused/)
  })

  test('a build that writes no digest is an error', async () => {
    const exec: Exec = async () => ({ exitCode: 0, stdout: '', stderr: '' })
    await expect(new Buildx({ exec, log: new MemoryLogger() }).build(options)).rejects.toThrow(
      /no containerimage.digest/,
    )
  })

  test('a build says how to add buildx when it is missing', async () => {
    const exec: Exec = async () => ({ exitCode: 1, stdout: '', stderr: fixture('missing') })
    await expect(new Buildx({ exec, log: new MemoryLogger() }).build(options)).rejects.toThrow(
      /docker\/setup-buildx-action/,
    )
  })
})
