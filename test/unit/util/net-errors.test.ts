import {
  classifyConnectionFailure,
  connectionFailureMessage,
  errorCode,
  type ConnectionFailure,
} from '../../../src/util/net-errors.js'

test.each([
  ['a system error', { code: 'ECONNREFUSED' }, 'ECONNREFUSED'],
  ['undici keeps the socket error as cause', { code: 'UND_ERR_SOCKET', cause: { code: 'ECONNRESET' } }, 'ECONNRESET'],
  [
    'a TLS error under a connect error',
    { code: 'UND_ERR_CONNECT', cause: { code: 'CERT_HAS_EXPIRED' } },
    'CERT_HAS_EXPIRED',
  ],
  ['no code', new Error('boom'), undefined],
  ['not an object', 'boom', undefined],
  ['nothing', undefined, undefined],
])('errorCode of %s', (_c, err, expected) => expect(errorCode(err)).toBe(expected))

test.each<[string, string, boolean, ConnectionFailure]>([
  ['ECONNREFUSED', 'connect ECONNREFUSED', false, 'refused'],
  ['ENOTFOUND', 'getaddrinfo ENOTFOUND x', true, 'host-not-found'],
  ['EAI_AGAIN', '', false, 'host-not-found'],
  ['EHOSTUNREACH', '', false, 'no-route'],
  ['UND_ERR_CONNECT_TIMEOUT', '', true, 'connect-timeout'],
  ['UND_ERR_BODY_TIMEOUT', '', false, 'answer-timeout'],
  ['ERR_SSL_WRONG_VERSION_NUMBER', '', true, 'not-tls'],
  ['EPROTO', 'ssl3_get_record:wrong version number', true, 'not-tls'],
  ['SELF_SIGNED_CERT_IN_CHAIN', '', true, 'certificate'],
  ['ERR_TLS_CERT_ALTNAME_INVALID', '', true, 'certificate'],
  ['UNKNOWN', 'unable to get local issuer certificate', true, 'certificate'],
  ['UND_ERR_SOCKET', 'other side closed', false, 'closed'],
  ['HPE_INVALID_CONSTANT', 'Expected HTTP/', false, 'closed'],
  ['ECONNRESET', 'socket hang up', true, 'other'], // over TLS a reset is not a scheme mistake
])('%s (%j, https %s) is %s', (code, message, https, expected) =>
  expect(classifyConnectionFailure(code, message, https)).toBe(expected),
)

describe('connectionFailureMessage', () => {
  const failure = (url: string, code: string, message = 'boom') => ({ url, code, message: `${url}: ${message}` })
  const registry = { what: 'registry r.example (https://r.example)', trust: 'trust its CA' }

  test('with an input to check, the message names it', () => {
    expect(
      connectionFailureMessage(failure('http://m:5000/api', 'ENOTFOUND'), {
        what: 'MLflow at http://m:5000',
        urlInput: 'tracking-uri',
        trust: 'give its CA',
      }),
    ).toBe('cannot reach MLflow at http://m:5000: host not found; check tracking-uri')
  })

  test.each([
    [
      failure('https://r.example/v2/', 'ECONNREFUSED'),
      'cannot reach registry r.example (https://r.example): ECONNREFUSED, connection refused (is the server up, is the port right?)',
    ],
    [
      failure('https://r.example/v2/', 'UND_ERR_HEADERS_TIMEOUT'),
      'registry r.example (https://r.example) accepted the connection but did not answer in time (UND_ERR_HEADERS_TIMEOUT)',
    ],
    [
      failure('https://r.example/v2/', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'),
      'TLS verification of registry r.example (https://r.example) failed (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate): trust its CA',
    ],
    [
      failure('https://r.example/v2/', 'ERR_SSL_WRONG_VERSION_NUMBER'),
      'registry r.example (https://r.example) does not speak TLS (it answered plain HTTP to an https:// URL): use an http:// URL',
    ],
    [
      failure('http://r.example/v2/', 'UND_ERR_SOCKET', 'other side closed'),
      'registry r.example (https://r.example) closed the connection without an HTTP answer (UND_ERR_SOCKET); if it serves TLS, use an https:// URL',
    ],
    [
      failure('https://r.example/v2/', 'EPIPE', 'write EPIPE'),
      'request to registry r.example (https://r.example) failed: EPIPE (write EPIPE)',
    ],
  ])('without an input, the code leads: case %#', (f, expected) => {
    expect(connectionFailureMessage(f, registry)).toBe(expected)
  })
})
