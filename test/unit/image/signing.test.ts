import { existsSync, statSync, readFileSync } from 'node:fs'
import type { Exec, ExecOptions } from '../../../src/image/exec.js'
import {
  COSIGN_MISSING,
  Cosign,
  cosignReason,
  parseSigningKey,
  parseVerifier,
  attestArgs,
  predicatesOf,
  signArgs,
  verifyArgs,
  verifyAttestationArgs,
} from '../../../src/image/signing.js'
import { MemoryLogger } from '../../support/memory-logger.js'

const PRIVATE = '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----'
const PUBLIC = '-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----'
const GH = 'https://token.actions.githubusercontent.com'
const exists = (p: string) => p === '/keys/cosign.key' || p === '/keys/cosign.pub'
const LOCAL = `127.0.0.1:5001/wine@sha256:${'a'.repeat(64)}`
const REMOTE = `ghcr.io/acme/wine@sha256:${'b'.repeat(64)}`
const TYPE = 'https://example.com/model/v1'

describe('parseSigningKey', () => {
  test.each([
    ['PEM text', PRIVATE, { pem: `${PRIVATE}\n` }],
    ['a path', '/keys/cosign.key', { path: '/keys/cosign.key' }],
    ['a public key', PUBLIC, { problem: 'holds a public key; signing needs the private key (cosign.key)' }],
    ['a missing file', '/nope.key', { problem: expect.stringContaining('file "/nope.key" does not exist') }],
    ['broken PEM', '-----BEGIN SOMETHING-----\nx', { problem: expect.stringContaining('neither a PEM private key') }],
  ])('%s', (_, value, expected) => {
    expect(parseSigningKey(value, exists)).toEqual(expected)
  })
})

describe('parseVerifier', () => {
  test.each([
    ['a public key PEM', PUBLIC, { kind: 'key', key: { pem: `${PUBLIC}\n` } }],
    ['a public key path', '/keys/cosign.pub', { kind: 'key', key: { path: '/keys/cosign.pub' } }],
    [
      'keyless, an identity holding @ (a workflow ref)',
      `keyless:^https://github.com/acme/m/\\.github/workflows/d\\.yml@refs/heads/main$@${GH}`,
      {
        kind: 'keyless',
        identityRegexp: '^https://github.com/acme/m/\\.github/workflows/d\\.yml@refs/heads/main$',
        issuer: GH,
      },
    ],
    [
      'keyless, a prefix',
      `keyless:^https://github.com/acme/@${GH}`,
      { kind: 'keyless', identityRegexp: '^https://github.com/acme/', issuer: GH },
    ],
  ])('%s', (_, value, expected) => {
    expect(parseVerifier(value, exists)).toEqual(expected)
  })

  test.each([
    ['keyless without an issuer', 'keyless:^https://github.com/acme/', 'is not keyless:<identity-regexp>@<issuer-url>'],
    ['keyless without an identity', `keyless:@${GH}`, 'is not keyless:<identity-regexp>@<issuer-url>'],
    ['a private key', PRIVATE, 'holds a private key'],
    ['a missing file', '/nope.pub', 'file "/nope.pub" does not exist'],
  ])('refused: %s', (_, value, problem) => {
    const parsed = parseVerifier(value, exists)
    expect('problem' in parsed && parsed.problem).toContain(problem)
  })

  test('a private key is never echoed', () => {
    const parsed = parseVerifier(PRIVATE, exists)
    expect(JSON.stringify(parsed)).not.toContain('AAAA')
  })
})

describe('cosign arguments', () => {
  test.each([
    [
      'key, loopback registry',
      LOCAL,
      '/t/cosign.key',
      ['sign', '--yes', '--key', '/t/cosign.key', '--tlog-upload=false', '--allow-http-registry', LOCAL],
    ],
    [
      'key, remote registry',
      REMOTE,
      '/t/cosign.key',
      ['sign', '--yes', '--key', '/t/cosign.key', '--tlog-upload=false', REMOTE],
    ],
    ['keyless', REMOTE, undefined, ['sign', '--yes', REMOTE]],
  ])('sign: %s', (_, image, key, expected) => {
    expect(signArgs(image, key)).toEqual(expected)
  })

  test.each([
    [
      'key, loopback registry',
      LOCAL,
      { keyFile: '/t/cosign.pub' },
      [
        'verify',
        '--key',
        '/t/cosign.pub',
        '--insecure-ignore-tlog=true',
        '--allow-http-registry',
        '--output',
        'json',
        LOCAL,
      ],
    ],
    [
      'keyless',
      REMOTE,
      { identityRegexp: '^https://github.com/acme/', issuer: GH },
      [
        'verify',
        '--certificate-identity-regexp',
        '^https://github.com/acme/',
        '--certificate-oidc-issuer',
        GH,
        '--output',
        'json',
        REMOTE,
      ],
    ],
  ])('verify: %s', (_, image, verifier, expected) => {
    expect(verifyArgs(image, verifier)).toEqual(expected)
  })

  test.each([
    [
      'key, loopback registry',
      LOCAL,
      '/t/cosign.key',
      [
        'attest',
        '--yes',
        '--key',
        '/t/cosign.key',
        '--tlog-upload=false',
        '--type',
        TYPE,
        '--predicate',
        '/t/p.json',
        '--replace',
        '--allow-http-registry',
        LOCAL,
      ],
    ],
    [
      'keyless',
      REMOTE,
      undefined,
      ['attest', '--yes', '--type', TYPE, '--predicate', '/t/p.json', '--replace', REMOTE],
    ],
  ])('attest: %s', (_, image, key, expected) => {
    expect(attestArgs(image, key, TYPE, '/t/p.json')).toEqual(expected)
  })

  test.each([
    [
      'key',
      LOCAL,
      { keyFile: '/t/cosign.pub' },
      [
        'verify-attestation',
        '--key',
        '/t/cosign.pub',
        '--insecure-ignore-tlog=true',
        '--type',
        TYPE,
        '--allow-http-registry',
        LOCAL,
      ],
    ],
    [
      'keyless',
      REMOTE,
      { identityRegexp: '^https://github.com/acme/', issuer: GH },
      [
        'verify-attestation',
        '--certificate-identity-regexp',
        '^https://github.com/acme/',
        '--certificate-oidc-issuer',
        GH,
        '--type',
        TYPE,
        REMOTE,
      ],
    ],
  ])('verify-attestation: %s', (_, image, verifier, expected) => {
    expect(verifyAttestationArgs(image, verifier, TYPE)).toEqual(expected)
  })
})

/** A DSSE envelope as cosign verify-attestation prints one per line. */
const envelope = (predicateType: string, predicate: unknown) =>
  JSON.stringify({
    payloadType: 'application/vnd.in-toto+json',
    payload: Buffer.from(
      JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', predicateType, subject: [], predicate }),
    ).toString('base64'),
    signatures: [{ keyid: '', sig: 'MEQ' }],
  })

test("predicatesOf: the predicates of the envelopes of the type, cosign's own text skipped", () => {
  const out = [
    envelope(TYPE, { a: 1 }),
    'Verification for x --',
    envelope('https://slsa.dev/provenance/v1', { b: 2 }),
    envelope(TYPE, { c: 3 }),
    '{not json',
  ].join('\n')
  expect(predicatesOf(out, TYPE)).toEqual([{ a: 1 }, { c: 3 }])
})

test.each([
  [
    'the last Error line',
    'Verification for x --\nError: no matching signatures: invalid signature\nmain.go:74: error during command execution: no matching signatures: invalid signature',
    'no matching signatures: invalid signature',
  ],
  ['else the last line', 'something\nwent wrong\n', 'went wrong'],
  ['nothing', '', 'no output'],
])('cosignReason: %s', (_, output, reason) => {
  expect(cosignReason(output)).toBe(reason)
})

describe('Cosign', () => {
  function fake(result: { exitCode: number; stdout?: string; stderr?: string }) {
    const calls: {
      args: readonly string[]
      options?: ExecOptions
      keyMode?: number
      keyText?: string
      keyFile?: string
    }[] = []
    const exec: Exec = async (_cmd, args, options) => {
      const i = args.indexOf('--key')
      const keyFile = i >= 0 ? args[i + 1] : undefined
      const seen = keyFile && existsSync(keyFile)
      calls.push({
        args,
        options,
        keyFile,
        keyMode: seen ? statSync(keyFile).mode & 0o777 : undefined,
        keyText: seen ? readFileSync(keyFile, 'utf8') : undefined,
      })
      return { stdout: '', stderr: '', ...result }
    }
    return { cosign: new Cosign({ exec, log: new MemoryLogger() }), calls }
  }

  test('sign with PEM text: a 0600 file while cosign runs, removed after; the password by env only', async () => {
    const { cosign, calls } = fake({ exitCode: 0 })
    await cosign.sign(LOCAL, { kind: 'key', key: { pem: `${PRIVATE}\n` }, password: 'pw-secret' })
    const [call] = calls
    expect(call!.keyMode).toBe(0o600)
    expect(call!.keyText).toBe(`${PRIVATE}\n`)
    expect(existsSync(call!.keyFile!)).toBe(false)
    expect(call!.options?.env).toEqual({ COSIGN_PASSWORD: 'pw-secret' })
    expect(call!.args.join(' ')).not.toContain('pw-secret')
    expect(call!.args.join(' ')).not.toContain('AAAA')
  })

  test('an unencrypted-password key still gets COSIGN_PASSWORD (empty), so cosign never prompts', async () => {
    const { cosign, calls } = fake({ exitCode: 0 })
    await cosign.sign(LOCAL, { kind: 'key', key: { path: '/keys/cosign.key' }, password: undefined })
    expect(calls[0]!.options?.env).toEqual({ COSIGN_PASSWORD: '' })
    expect(calls[0]!.keyFile).toBe('/keys/cosign.key')
  })

  test('a failed verification: one line naming the image, what was wanted and why', async () => {
    const { cosign, calls } = fake({
      exitCode: 1,
      stderr: 'Error: no signatures found\nmain.go:74: error during command execution: no signatures found',
    })
    const err = await cosign.verify(LOCAL, { kind: 'key', key: { pem: `${PUBLIC}\n` } }).catch((e: unknown) => e)
    expect((err as Error).message).toBe(
      `the signature of ${LOCAL} did not verify: wanted a signature by the public key in verify-signature; cosign: no signatures found`,
    )
    expect(existsSync(calls[0]!.keyFile!)).toBe(false)
  })

  test('keyless verification names the identity and issuer', async () => {
    const { cosign } = fake({
      exitCode: 1,
      stderr: 'Error: no matching signatures: none of the expected identities matched',
    })
    const err = await cosign
      .verify(REMOTE, { kind: 'keyless', identityRegexp: '^https://github.com/acme/', issuer: GH })
      .catch((e: unknown) => e)
    expect((err as Error).message).toContain(`an identity matching ^https://github.com/acme/ from ${GH}`)
  })

  test.each([
    ['version', (c: Cosign) => c.version()],
    ['sign', (c: Cosign) => c.sign(LOCAL, { kind: 'keyless' })],
    ['verify', (c: Cosign) => c.verify(LOCAL, { kind: 'keyless', identityRegexp: 'x', issuer: GH })],
    ['attest', (c: Cosign) => c.attest(LOCAL, { kind: 'keyless' }, TYPE, {})],
  ])('%s without cosign on PATH names the fix', async (_, run) => {
    const { cosign } = fake({ exitCode: 127, stderr: 'Unable to locate executable file: cosign' })
    await expect(run(cosign)).rejects.toThrow(COSIGN_MISSING)
  })

  test('attest: the predicate in a file, the key 0600, both removed after; the password by env only', async () => {
    const seen: { predicate?: string; keyMode?: number; files: string[] } = { files: [] }
    const exec: Exec = async (_cmd, args, options) => {
      const at = (flag: string) => args[args.indexOf(flag) + 1]!
      seen.predicate = readFileSync(at('--predicate'), 'utf8')
      seen.keyMode = statSync(at('--key')).mode & 0o777
      seen.files = [at('--predicate'), at('--key')]
      expect(options?.env).toEqual({ COSIGN_PASSWORD: 'pw' })
      return { exitCode: 0, stdout: '', stderr: '' }
    }
    await new Cosign({ exec, log: new MemoryLogger() }).attest(
      LOCAL,
      { kind: 'key', key: { pem: `${PRIVATE}\n` }, password: 'pw' },
      TYPE,
      { model: { name: 'wine' } },
    )
    expect(JSON.parse(seen.predicate!)).toEqual({ model: { name: 'wine' } })
    expect(seen.keyMode).toBe(0o600)
    expect(seen.files.filter((f) => existsSync(f))).toEqual([])
  })

  test("a failed attest names the image and cosign's reason", async () => {
    const { cosign } = fake({ exitCode: 1, stderr: 'Error: signing: UNAUTHORIZED' })
    await expect(cosign.attest(LOCAL, { kind: 'keyless' }, TYPE, {})).rejects.toThrow(
      `attesting ${LOCAL} failed: signing: UNAUTHORIZED`,
    )
  })

  test.each([
    [
      'no attestation at all',
      'Error: no matching attestations: \nerror during command execution: no matching attestations: ',
    ],
    [
      'another key',
      'Error: no matching attestations: accepted signatures do not match threshold, Found: 0, Expected 1',
    ],
    [
      'another type',
      `Error: none of the attestations matched the predicate type: ${TYPE}, found: https://slsa.dev/provenance/v1`,
    ],
  ])('verifiedPredicates: %s is no predicate, not an error', async (_, stderr) => {
    const { cosign } = fake({ exitCode: 1, stderr })
    expect(await cosign.verifiedPredicates(LOCAL, { kind: 'key', key: { path: '/keys/cosign.pub' } }, TYPE)).toEqual([])
  })

  test('verifiedPredicates: any other failure is an error naming the image', async () => {
    const { cosign } = fake({ exitCode: 1, stderr: 'Error: GET http://127.0.0.1:5001/v2/: connection refused' })
    await expect(
      cosign.verifiedPredicates(LOCAL, { kind: 'key', key: { path: '/keys/cosign.pub' } }, TYPE),
    ).rejects.toThrow(
      `the attestations of ${LOCAL} could not be verified: cosign: GET http://127.0.0.1:5001/v2/: connection refused`,
    )
  })

  test('verifiedPredicates: the predicates cosign verified', async () => {
    const { cosign } = fake({ exitCode: 0, stdout: `${envelope(TYPE, { model: 1 })}\n` })
    expect(await cosign.verifiedPredicates(LOCAL, { kind: 'key', key: { pem: PUBLIC } }, TYPE)).toEqual([{ model: 1 }])
  })

  test('version reads GitVersion', async () => {
    const { cosign } = fake({ exitCode: 0, stdout: 'GitVersion:    v2.6.5\nGitCommit: x\n' })
    expect(await cosign.version()).toBe('v2.6.5')
  })
})
