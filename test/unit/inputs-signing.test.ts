// sign, signing-key and verify-signature: what parses, what is refused (naming the input), what is masked.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseInputs } from '../../src/inputs.js'
import { InputError } from '../../src/util/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'inputs-signing-'))
const PRIVATE =
  '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nkeyline-secret\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----'
const PUBLIC = '-----BEGIN PUBLIC KEY-----\npubline\n-----END PUBLIC KEY-----'
const PUB_PATH = join(dir, 'cosign.pub')
writeFileSync(PUB_PATH, PUBLIC)
const GH = 'https://token.actions.githubusercontent.com'
const ON_GITHUB = { ACTIONS_ID_TOKEN_REQUEST_URL: 'https://pipelines.example/token' }

const BASE = {
  'model-uri': 'models:/wine-classifier@champion',
  'tracking-uri': 'https://mlflow.example.com/',
  'image-repository': 'ghcr.io/acme/wine',
}

function parse(inputs: Record<string, string>, env: Record<string, string> = {}) {
  const masked: string[] = []
  const all: Record<string, string> = { ...BASE, ...inputs }
  const result = parseInputs({ get: (n) => all[n] ?? '', env, mask: (s) => masked.push(s) })
  return { signing: result.signing, masked }
}

function errorOf(inputs: Record<string, string>, env: Record<string, string> = {}): InputError {
  try {
    parse(inputs, env)
  } catch (err) {
    if (err instanceof InputError) return err
    throw err
  }
  throw new Error('expected an InputError')
}

test('neither by default', () => {
  expect(parse({}).signing).toEqual({ sign: undefined, verify: undefined })
})

test.each<[string, Record<string, string>, Record<string, string>, unknown]>([
  [
    'sign with a key and its password',
    { sign: 'true', 'signing-key': PRIVATE },
    { COSIGN_PASSWORD: 'pw' },
    {
      sign: { kind: 'key', key: { pem: `${PRIVATE}\n` }, password: 'pw' },
      verify: undefined,
    },
  ],
  [
    'keyless on GitHub with id-token: write',
    { sign: 'true' },
    ON_GITHUB,
    { sign: { kind: 'keyless' }, verify: undefined },
  ],
  [
    'keyless outside a deploy needs no token yet',
    { sign: 'true', action: 'plan' },
    {},
    { sign: { kind: 'keyless' }, verify: undefined },
  ],
  [
    'verify with a public key path',
    { 'verify-signature': PUB_PATH },
    {},
    {
      sign: undefined,
      verify: { kind: 'key', key: { path: PUB_PATH } },
    },
  ],
  [
    'verify keyless',
    { 'verify-signature': `keyless:^https://github.com/acme/@${GH}` },
    {},
    {
      sign: undefined,
      verify: { kind: 'keyless', identityRegexp: '^https://github.com/acme/', issuer: GH },
    },
  ],
])('%s', (_, inputs, env, expected) => {
  expect(parse(inputs, env).signing).toEqual(expected)
})

test.each<[string, Record<string, string>, Record<string, string>, string, string]>([
  ['signing-key without sign', { 'signing-key': PRIVATE }, {}, 'signing-key', 'only applies with sign: true'],
  ['keyless without the OIDC token', { sign: 'true' }, {}, 'sign', 'permissions: id-token: write'],
  [
    'sign with mlflow-runtime',
    { sign: 'true', 'signing-key': PRIVATE, serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '' },
    {},
    'sign',
    'builds no image',
  ],
  [
    'verify with mlflow-runtime',
    { 'verify-signature': PUB_PATH, serving: 'mlflow-runtime', target: 'kserve', 'image-repository': '' },
    {},
    'verify-signature',
    'builds no image',
  ],
  ['a public key as signing-key', { sign: 'true', 'signing-key': PUBLIC }, {}, 'signing-key', 'holds a public key'],
  ['a private key as verify-signature', { 'verify-signature': PRIVATE }, {}, 'verify-signature', 'holds a private key'],
  ['a missing key file', { 'verify-signature': '/nonexistent.pub' }, {}, 'verify-signature', 'does not exist'],
  [
    'a bad keyless value',
    { 'verify-signature': 'keyless:acme' },
    {},
    'verify-signature',
    'keyless:<identity-regexp>@<issuer-url>',
  ],
  ['sign not a boolean', { sign: 'yes' }, {}, 'sign', 'must be true or false'],
])('refused: %s', (_, inputs, env, input, message) => {
  const err = errorOf(inputs, env)
  expect(err.input).toBe(input)
  expect(err.message).toContain(message)
  expect(err.message).not.toContain('keyline-secret')
})

test('the key, each of its lines and COSIGN_PASSWORD are masked; a private key in verify-signature too', () => {
  const { masked } = parse({ sign: 'true', 'signing-key': PRIVATE }, { COSIGN_PASSWORD: 'pw-9' })
  expect(masked).toEqual(expect.arrayContaining([PRIVATE, 'keyline-secret', 'pw-9']))
  const m: string[] = []
  expect(() =>
    parseInputs({ get: (n) => ({ ...BASE, 'verify-signature': PRIVATE })[n] ?? '', env: {}, mask: (s) => m.push(s) }),
  ).toThrow(InputError)
  expect(m).toContain(PRIVATE)
})
