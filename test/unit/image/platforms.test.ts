// Multi-platform builds: platform matching, the cache rule over platforms, the builder's platforms
// checked before a build, and the base image's.
import { readFileSync } from 'node:fs'
import {
  Buildx,
  builderPlatformProblem,
  explainBuildFailure,
  parseBuildxInspect,
  type BuilderInfo,
} from '../../../src/image/buildx.js'
import type { Exec, ExecResult } from '../../../src/image/exec.js'
import {
  computeIdentity,
  decideCache,
  IDENTITY_LABEL,
  missingPlatforms,
  normalizePlatform,
  type CacheRuleInput,
  type IdentityInput,
} from '../../../src/image/identity.js'
import { cacheInput as input, DIGEST as DIG, IDENTITY as I } from './cache-input.js'
import { baseLacksPlatforms } from '../../../src/image/index.js'
import { MemoryLogger } from '../../support/memory-logger.js'

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')

describe('platform matching', () => {
  test.each([
    ['linux/amd64', 'linux/amd64'],
    ['linux/arm64', 'linux/arm64/v8'],
    ['linux/arm64/v8', 'linux/arm64/v8'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/v6', 'linux/arm/v6'],
    ['Linux/AMD64 ', 'linux/amd64'],
    ['linux/amd64/v3', 'linux/amd64/v3'],
  ])('normalizePlatform(%s) = %s', (given, want) => {
    expect(normalizePlatform(given)).toBe(want)
  })

  test.each<[string[], string[], string[]]>([
    [['linux/amd64', 'linux/arm64'], ['linux/amd64', 'linux/arm64/v8'], []],
    [['linux/amd64', 'linux/arm64'], ['linux/amd64'], ['linux/arm64']],
    [['linux/arm64/v8'], ['linux/arm64'], []],
    [['linux/arm/v6'], ['linux/arm/v7'], ['linux/arm/v6']],
    [['linux/amd64'], ['linux/amd64/v2'], ['linux/amd64']],
    [['linux/amd64', 'linux/arm64'], [], ['linux/amd64', 'linux/arm64']],
    [[], ['linux/amd64'], []],
  ])('missingPlatforms(%j, %j) = %j', (requested, available, missing) => {
    expect(missingPlatforms(requested, available)).toEqual(missing)
  })
})

describe('identity over platforms', () => {
  const input: IdentityInput = {
    model: { name: 'm', version: '1', runId: 'r', artifacts: [], mlmodelSha256: 'f'.repeat(64), requirements: '' },
    base: { ref: 'b', digest: 'sha256:' + 'b'.repeat(64) },
    runtime: { name: 'kserve', version: '0.21.0' },
    generator: { version: '0.1.0', template: '2' },
    build: { platforms: [], args: {} },
  }
  const idOf = (platforms: string[]) => computeIdentity({ ...input, build: { platforms, args: {} } }).digest

  test('the platform set is the identity: order does not count, membership does', () => {
    expect(idOf(['linux/arm64', 'linux/amd64'])).toBe(idOf(['linux/amd64', 'linux/arm64']))
    expect(idOf(['linux/amd64', 'linux/arm64'])).not.toBe(idOf(['linux/amd64']))
    expect(idOf(['linux/amd64'])).not.toBe(idOf([]))
  })
})

describe('decideCache over platforms', () => {
  const both = ['linux/amd64', 'linux/arm64']
  const holding = (platforms: string[] | undefined, identity = I) => ({
    exists: true as const,
    digest: DIG,
    labels: { [IDENTITY_LABEL]: identity },
    ...(platforms ? { platforms } : {}),
  })

  test.each<[string, Partial<CacheRuleInput>, 'hit' | 'build', RegExp]>([
    [
      'index with both, both asked',
      { platforms: both, remote: holding(['linux/amd64', 'linux/arm64/v8']) },
      'hit',
      /already holds this model/,
    ],
    [
      'amd64 only, both asked',
      { platforms: both, remote: holding(['linux/amd64']) },
      'build',
      /holds no linux\/arm64 image \(only linux\/amd64\)/,
    ],
    [
      'nothing readable, both asked',
      { platforms: both, remote: holding([]) },
      'build',
      /holds no linux\/amd64, linux\/arm64 image \(only no platform\)/,
    ],
    ['platforms not read', { platforms: both, remote: holding(undefined) }, 'hit', /already holds/],
    ['no platforms asked', { platforms: [], remote: holding(['linux/amd64']) }, 'hit', /already holds/],
    [
      'other identity, both present',
      { platforms: both, remote: holding(both, 'b'.repeat(64)) },
      'build',
      /another model/,
    ],
  ])('%s → %s', (_n, over, kind, reason) => {
    const d = decideCache(input(over))
    expect(d.kind).toBe(kind)
    expect(d.reason).toMatch(reason)
  })

  test('a tag with the identity but a platform missing warns and, with build: never, refuses', () => {
    const d = decideCache(input({ platforms: both, remote: holding(['linux/amd64']) }))
    expect(d.kind === 'build' && d.warning).toMatch(/lacks linux\/arm64 although its labels name this model/)
    expect(() => decideCache(input({ policy: 'never', platforms: both, remote: holding(['linux/amd64']) }))).toThrow(
      /build: never, but the image must be built: .*holds no linux\/arm64 image/,
    )
  })
})

describe('the builder before a build', () => {
  test('buildx inspect: the docker driver (Docker 20.10) and a remote BuildKit, as printed', () => {
    const docker = parseBuildxInspect(fixture('buildx-inspect-docker.txt'))
    expect(docker).toMatchObject({ name: 'default', driver: 'docker' })
    expect(docker.platforms).toContain('linux/amd64')
    const remote = parseBuildxInspect(fixture('buildx-inspect-remote.txt'))
    expect(remote).toMatchObject({ name: 'rig-buildkit', driver: 'remote' })
    expect(remote.platforms).toEqual(expect.arrayContaining(['linux/amd64', 'linux/arm64', 'linux/arm/v7']))
  })

  test('several nodes: the union of their platforms; the star of a configured platform dropped', () => {
    const text = [
      'Name:   multi',
      'Driver: docker-container',
      '',
      'Nodes:',
      'Name:      multi0',
      'Platforms: linux/amd64*, linux/386',
      'Name:      multi1',
      'Platforms: linux/arm64*',
    ].join('\n')
    expect(parseBuildxInspect(text)).toEqual({
      name: 'multi',
      driver: 'docker-container',
      platforms: ['linux/amd64', 'linux/386', 'linux/arm64'],
    })
  })

  const info = (driver: string, platforms: string[], name = 'b1'): BuilderInfo => ({ name, driver, platforms })
  test.each<[string, BuilderInfo, string[], RegExp | undefined]>([
    [
      'docker driver, two platforms',
      info('docker', ['linux/amd64', 'linux/arm64'], 'default'),
      ['linux/amd64', 'linux/arm64'],
      /builder "default" uses the docker driver, which builds one platform only: set up a BuildKit builder with docker\/setup-qemu-action and docker\/setup-buildx-action/,
    ],
    ['docker driver, one platform', info('docker', ['linux/amd64']), ['linux/amd64'], undefined],
    [
      'BuildKit without QEMU',
      info('docker-container', ['linux/amd64', 'linux/386']),
      ['linux/amd64', 'linux/arm64'],
      /builder "b1" cannot build linux\/arm64 \(it runs linux\/amd64, linux\/386\): register QEMU with docker\/setup-qemu-action/,
    ],
    [
      'BuildKit with QEMU',
      info('remote', ['linux/amd64', 'linux/arm64']),
      ['linux/amd64', 'linux/arm64/v8'],
      undefined,
    ],
    ['not booted: no platforms listed', info('docker-container', []), ['linux/amd64', 'linux/arm64'], undefined],
  ])('%s', (_n, builder, platforms, problem) => {
    const got = builderPlatformProblem(builder, platforms)
    if (problem) expect(got).toMatch(problem)
    else expect(got).toBeUndefined()
  })

  const options = {
    context: '/ctx',
    dockerfile: '/ctx/Dockerfile',
    tags: ['127.0.0.1:5001/wine:v1'],
    platforms: ['linux/amd64', 'linux/arm64'],
    buildArgs: {},
    labels: {},
    cacheFrom: [],
    cacheTo: [],
    baseImage: 'base',
  }

  /** A fake exec that records each call's arguments and answers with `answer`. */
  function recordingExec(answer: (args: readonly string[]) => ExecResult) {
    const calls: (readonly string[])[] = []
    const exec: Exec = async (_cmd, args) => {
      calls.push(args)
      return answer(args)
    }
    return { exec, calls }
  }
  const ok = (file: string): ExecResult => ({ exitCode: 0, stdout: fixture(file), stderr: '' })
  const boom: ExecResult = { exitCode: 1, stdout: '', stderr: 'ERROR: boom' }
  const noBuilder: ExecResult = { exitCode: 1, stdout: '', stderr: 'ERROR: no builder "nope" found' }
  /** The remote builder's inspect; every build fails. */
  const remoteBuilder = (args: readonly string[]) => (args[1] === 'inspect' ? ok('buildx-inspect-remote.txt') : boom)

  test('Buildx refuses several platforms on the docker driver without starting the build', async () => {
    const { exec, calls } = recordingExec(() => ok('buildx-inspect-docker.txt'))
    await expect(new Buildx({ exec, log: new MemoryLogger() }).build(options)).rejects.toThrow(/docker driver/)
    expect(calls).toEqual([['buildx', 'inspect']])
  })

  test('Buildx inspects the named builder, then builds', async () => {
    const { exec, calls } = recordingExec(remoteBuilder)
    await expect(
      new Buildx({ exec, log: new MemoryLogger() }).build({ ...options, builder: 'rig-buildkit' }),
    ).rejects.toThrow(/exit code 1: ERROR: boom/)
    expect(calls[0]).toEqual(['buildx', 'inspect', 'rig-buildkit'])
    expect(calls[1]!.slice(0, 2)).toEqual(['buildx', 'build'])
  })

  test('one inspect per builder: the driver, then two builds with platforms (the SBOM path)', async () => {
    const { exec, calls } = recordingExec(remoteBuilder)
    const buildx = new Buildx({ exec, log: new MemoryLogger() })
    expect(await buildx.driver('rig-buildkit')).toBe('remote')
    for (let i = 0; i < 2; i++)
      await expect(buildx.build({ ...options, builder: 'rig-buildkit' })).rejects.toThrow(/ERROR: boom/)
    expect(calls.filter((a) => a[1] === 'inspect')).toEqual([['buildx', 'inspect', 'rig-buildkit']])
    expect(calls.filter((a) => a[1] === 'build')).toHaveLength(2)
  })

  test('a failed inspect is asked again', async () => {
    const { exec, calls } = recordingExec(() => noBuilder)
    const buildx = new Buildx({ exec, log: new MemoryLogger() })
    expect(await buildx.driver('nope')).toBeUndefined()
    expect(await buildx.driver('nope')).toBeUndefined()
    expect(calls).toHaveLength(2)
  })

  test('an inspect that fails leaves the explaining to the build', async () => {
    const { exec, calls } = recordingExec(() => noBuilder)
    await expect(new Buildx({ exec, log: new MemoryLogger() }).build({ ...options, builder: 'nope' })).rejects.toThrow(
      /no buildx builder named "nope"/,
    )
    expect(calls).toHaveLength(2)
  })

  test('exec format error: QEMU is missing for a platform', () => {
    const log = [
      '#7 [linux/arm64 2/5] RUN apt-get update',
      '#7 0.071 exec /bin/sh: exec format error',
      '#7 ERROR: process "/bin/sh -c apt-get update" did not complete successfully: exit code: 1',
    ].join('\n')
    expect(explainBuildFailure(1, log, { baseImage: 'b', tags: ['t'], dockerHost: undefined })).toMatch(
      /exec format error\): register QEMU with docker\/setup-qemu-action/,
    )
  })
})

describe('the base image before a build', () => {
  test.each<[string[], string[], RegExp]>([
    [
      ['linux/arm64'],
      ['linux/amd64'],
      /has no linux\/arm64 image \(it holds linux\/amd64\): use a base image whose index holds every platform.*or remove linux\/arm64 from platforms$/,
    ],
    [['linux/amd64', 'linux/arm64'], [], /has no linux\/amd64 or linux\/arm64 image \(it holds no platform\)/],
  ])('missing %j of %j', (missing, has, message) => {
    const line = baseLacksPlatforms('127.0.0.1:5001/kserve-base:0.21.0-py3.11', missing, has)
    expect(line).toMatch(/^the base image 127.0.0.1:5001\/kserve-base:0.21.0-py3.11 /)
    expect(line).toMatch(message)
    expect(line).not.toMatch(/\n/)
  })
})
