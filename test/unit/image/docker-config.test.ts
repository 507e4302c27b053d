import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DockerConfigCredentials, dockerConfigPath, normalizeRegistryKey } from '../../../src/image/docker-config.js'
import { actionsExec } from '../../../src/image/exec.js'

test.each([
  ['https://index.docker.io/v1/', 'docker.io'],
  ['index.docker.io', 'docker.io'],
  ['registry-1.docker.io', 'docker.io'],
  ['docker.io', 'docker.io'],
  ['ghcr.io', 'ghcr.io'],
  ['https://GHCR.io', 'ghcr.io'],
  ['http://127.0.0.1:5002/v2/', '127.0.0.1:5002'],
  ['123.dkr.ecr.eu-west-1.amazonaws.com', '123.dkr.ecr.eu-west-1.amazonaws.com'],
])('normalizeRegistryKey(%s) = %s', (key, host) => {
  expect(normalizeRegistryKey(key)).toBe(host)
})

test('config path: DOCKER_CONFIG, else ~/.docker', () => {
  expect(dockerConfigPath({ DOCKER_CONFIG: '/cfg' }, '/home/u')).toBe('/cfg/config.json')
  expect(dockerConfigPath({}, '/home/u')).toBe('/home/u/.docker/config.json')
})

describe('DockerConfigCredentials', () => {
  let dir: string
  let bin: string
  const savedPath = process.env.PATH
  const b64 = (s: string) => Buffer.from(s).toString('base64')

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockercfg-'))
    bin = join(dir, 'bin')
    await mkdir(bin)
    // A credential helper as docker-credential-helpers defines them: server URL on stdin, JSON out.
    const helper = `#!/bin/sh
[ "$1" = get ] || exit 2
read -r server
case "$server" in
  helped.example.com) echo '{"ServerURL":"helped.example.com","Username":"robot","Secret":"helper-secret"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"<token>","Secret":"refresh-token"}' ;;
  broken.example.com) echo 'helper exploded' >&2; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`
    await writeFile(join(bin, 'docker-credential-fake'), helper)
    await chmod(join(bin, 'docker-credential-fake'), 0o755)
    // @actions/exec finds executables on the action's own PATH.
    process.env.PATH = `${bin}:${savedPath}`
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          '127.0.0.1:5002': { auth: b64('rig-pusher:s3cret:with:colons') },
          'https://quay.io': { username: 'u', password: 'p' },
          'ids.example.com': { identitytoken: 'idtok' },
          'ids-user.example.com': { auth: b64('rig-alice:'), identitytoken: 'idtok2' },
          'tok.example.com': { registrytoken: 'regtok' },
          'empty.example.com': {},
        },
        credHelpers: { 'helped.example.com': 'fake', 'broken.example.com': 'fake', 'gone.example.com': 'nosuchhelper' },
        credsStore: 'fake',
      }),
    )
  })
  afterAll(() => {
    process.env.PATH = savedPath
  })

  const make = () => {
    const masked: string[] = []
    const creds = new DockerConfigCredentials({
      env: { DOCKER_CONFIG: dir },
      exec: actionsExec,
      mask: (s) => masked.push(s),
    })
    return { creds, masked }
  }

  test.each([
    [
      '127.0.0.1:5002',
      { username: 'rig-pusher', secret: 's3cret:with:colons', kind: 'basic' },
      /auths\["127.0.0.1:5002"\]/,
    ],
    ['quay.io', { username: 'u', secret: 'p', kind: 'basic' }, /auths\["https:\/\/quay.io"\]/],
    ['ids.example.com', { secret: 'idtok', kind: 'identity-token' }, /auths/],
    // docker login keeps the user beside the token (auth = "user:"), so messages can name them.
    ['ids-user.example.com', { username: 'rig-alice', secret: 'idtok2', kind: 'identity-token' }, /auths/],
    ['tok.example.com', { secret: 'regtok', kind: 'registry-token' }, /auths/],
    [
      'helped.example.com',
      { username: 'robot', secret: 'helper-secret', kind: 'basic' },
      /docker-credential-fake \(credHelpers/,
    ],
    ['docker.io', { secret: 'refresh-token', kind: 'identity-token' }, /credsStore "fake"/],
  ])('%s', async (host, expected, source) => {
    const { creds, masked } = make()
    const c = await creds.get(host)
    expect(c).toMatchObject(expected)
    expect(c!.source).toMatch(source)
    expect(masked).toContain(expected.secret)
  })

  test('the base64 auth string itself is masked too', async () => {
    const { creds, masked } = make()
    await creds.get('127.0.0.1:5002')
    expect(masked).toContain(b64('rig-pusher:s3cret:with:colons'))
  })

  test('nothing stored: the store says not found → undefined', async () => {
    expect(await make().creds.get('nothing.example.com')).toBeUndefined()
    // An auths entry without a secret falls through to credsStore, which has none either.
    expect(await make().creds.get('empty.example.com')).toBeUndefined()
  })

  test('a failing helper is an error naming it, without secrets', async () => {
    await expect(make().creds.get('broken.example.com')).rejects.toThrow(
      /docker-credential-fake get \(credHelpers\["broken.example.com"\].*\) failed with exit code 3: helper exploded/,
    )
    await expect(make().creds.get('gone.example.com')).rejects.toThrow(
      /docker-credential-nosuchhelper .* not installed/,
    )
  })

  test('no config file: no credentials', async () => {
    const creds = new DockerConfigCredentials({
      env: { DOCKER_CONFIG: join(dir, 'none') },
      exec: actionsExec,
      mask: () => {},
    })
    expect(await creds.get('ghcr.io')).toBeUndefined()
  })

  test('a config that is not JSON is an error naming the file', async () => {
    const bad = join(dir, 'bad')
    await mkdir(bad)
    await writeFile(join(bad, 'config.json'), '{nope')
    const creds = new DockerConfigCredentials({ env: { DOCKER_CONFIG: bad }, exec: actionsExec, mask: () => {} })
    await expect(creds.get('ghcr.io')).rejects.toThrow(/bad\/config.json is not valid JSON/)
  })
})
