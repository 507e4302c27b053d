import { connectionMessage, firstLine, httpFailureMessage, parseErrorJson } from '../../../src/mlflow/errors.js'
import { HttpConnectionError } from '../../../src/util/http.js'

const conn = (url: string, code: string, message = 'boom') => new HttpConnectionError(url, code, `${url}: ${message}`)

describe('connectionMessage', () => {
  test.each([
    [conn('http://127.0.0.1:1/api', 'ECONNREFUSED'), /connection refused.*check tracking-uri/],
    [conn('http://nope.invalid/api', 'ENOTFOUND'), /host not found; check tracking-uri/],
    [
      conn('https://127.0.0.1:5050/api', 'ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'),
      /does not speak TLS.*use http:\/\/ in tracking-uri/,
    ],
    [conn('https://x/api', 'EPROTO', 'SSL routines:ssl3_get_record:wrong version number'), /use http:\/\//],
    [
      conn('https://x/api', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'),
      /TLS verification.*mlflow-ca-cert.*mlflow-insecure-tls/,
    ],
    [
      conn('https://x/api', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'),
      /mlflow-ca-cert/,
    ],
    [
      conn('https://x/api', 'ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"),
      /mlflow-ca-cert/,
    ],
    [
      conn('http://x/api', 'UND_ERR_SOCKET', 'other side closed'),
      /closed the connection.*use https:\/\/ in tracking-uri/,
    ],
    [conn('http://x/api', 'UND_ERR_HEADERS_TIMEOUT'), /did not answer in time/],
    [conn('http://x/api', 'UND_ERR_CONNECT_TIMEOUT'), /timed out/],
  ])('connection case %#', (err, expected) => {
    const msg = connectionMessage(err, 'MLflow at x', 'tracking-uri')
    expect(msg).toMatch(expected)
    expect(msg).not.toContain('\n')
  })
})

describe('firstLine', () => {
  test.each([
    [
      'text/html',
      '<!doctype html><html><head><title>401 Authorization Required</title></head><body>x</body></html>',
      '401 Authorization Required',
    ],
    ['text/html', '<html><body><h1>Bad Gateway</h1></body></html>', 'Bad Gateway'],
    ['text/html', '<html><body>\n<p>Sign in to continue</p></body></html>', 'Sign in to continue'],
    [
      'text/plain',
      '\n\nYou are not authenticated. Please see docs\nmore',
      'You are not authenticated. Please see docs',
    ],
    [undefined, '', '(empty body)'],
    [undefined, '<!DOCTYPE html><title>Login</title>', 'Login'],
  ])('%s %j → %s', (type, text, expected) => expect(firstLine(type, text)).toBe(expected))
})

describe('parseErrorJson', () => {
  test.each([
    [
      '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Registered Model with name=x not found"}',
      { code: 'RESOURCE_DOES_NOT_EXIST', message: 'Registered Model with name=x not found' },
    ],
    ['{"detail":"Authentication required"}', { message: 'Authentication required' }],
    [
      '{"error":"invalid_client","error_description":"client authentication failed"}',
      { code: 'invalid_client', message: 'client authentication failed' },
    ],
    ['not json', undefined],
    ['[1,2]', undefined],
    ['{"other":1}', undefined],
  ])('%s', (text, expected) => expect(parseErrorJson(text)).toEqual(expected))
})

describe('httpFailureMessage', () => {
  const base = {
    method: 'GET',
    url: 'http://m:5000/api/2.0/mlflow/registered-models/get?name=x',
    server: 'MLflow at http://m:5000',
    credential: 'basic auth as user "reader" (mlflow-username/mlflow-password)',
    anonymous: false,
    contentType: 'text/plain',
  }
  test.each([
    [
      { status: 401, text: 'You are not authenticated.' },
      /rejected the credentials \(401; plain text instead of MLflow JSON: "You are not authenticated\."\); sent basic auth as user "reader"/,
    ],
    [
      { status: 401, text: 'x', anonymous: true },
      /requires authentication \(401.*set mlflow-token, mlflow-username\/mlflow-password or oidc-\*/,
    ],
    [
      { status: 403, text: 'Permission denied' },
      /denied access \(403; plain text.*"Permission denied"\); sent basic auth as user "reader".*READ/,
    ],
    [
      { status: 401, contentType: 'application/json', text: '{"detail":"Authentication required"}' },
      /401; Authentication required/,
    ],
    [
      {
        status: 404,
        contentType: 'application/json',
        text: '{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Registered Model with name=x not found"}',
      },
      /^MLflow at http:\/\/m:5000: RESOURCE_DOES_NOT_EXIST: Registered Model with name=x not found \(HTTP 404/,
    ],
    [
      { status: 502, contentType: 'text/html', text: '<html><title>502 Bad Gateway</title></html>' },
      /answered HTTP 502 with an HTML page instead of MLflow JSON: "502 Bad Gateway"/,
    ],
    [
      { status: 404, contentType: 'text/html', text: '<h1>Not Found</h1>' },
      /HTTP 404 with an HTML page.*is tracking-uri the MLflow server/,
    ],
    [
      { status: 503, text: 'Endpoint disabled due to the mlflow server running with `--no-serve-artifacts`' },
      /--no-serve-artifacts/,
    ],
  ])('%j', (f, expected) => {
    const { message } = httpFailureMessage({ ...base, ...f })
    expect(message).toMatch(expected)
    expect(message).not.toContain('\n')
  })

  test('never contains the credential value, only its description', () => {
    const { message } = httpFailureMessage({
      ...base,
      status: 401,
      text: 'no',
      credential: 'bearer token from mlflow-token',
    })
    expect(message).toContain('bearer token from mlflow-token')
  })
})
