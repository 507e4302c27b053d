import {
  formatImageRef,
  isLoopbackRegistry,
  parseImageRef,
  pinnedRef,
  registryBaseUrl,
} from '../../../src/image/reference.js'

const D = 'sha256:' + 'a'.repeat(64)

describe('parseImageRef', () => {
  test.each([
    ['nginx', 'docker.io', 'registry-1.docker.io', 'library/nginx', undefined, undefined],
    ['nginx:1.27', 'docker.io', 'registry-1.docker.io', 'library/nginx', '1.27', undefined],
    ['docker.io/seldonio/mlserver:1.7.1', 'docker.io', 'registry-1.docker.io', 'seldonio/mlserver', '1.7.1', undefined],
    [
      'index.docker.io/library/python:3.11-slim',
      'docker.io',
      'registry-1.docker.io',
      'library/python',
      '3.11-slim',
      undefined,
    ],
    [
      '127.0.0.1:5001/mlserver-base:1.7.1-py3.11',
      '127.0.0.1:5001',
      '127.0.0.1:5001',
      'mlserver-base',
      '1.7.1-py3.11',
      undefined,
    ],
    ['localhost/wine', 'localhost', 'localhost', 'wine', undefined, undefined],
    ['localhost:5000/a/b/c', 'localhost:5000', 'localhost:5000', 'a/b/c', undefined, undefined],
    ['ghcr.io/acme/wine@' + D, 'ghcr.io', 'ghcr.io', 'acme/wine', undefined, D],
    ['ghcr.io/acme/wine:v2@' + D, 'ghcr.io', 'ghcr.io', 'acme/wine', 'v2', D],
    ['GHCR.IO/acme/wine', 'ghcr.io', 'ghcr.io', 'acme/wine', undefined, undefined],
    [
      '123.dkr.ecr.eu-west-1.amazonaws.com/models/wine',
      '123.dkr.ecr.eu-west-1.amazonaws.com',
      '123.dkr.ecr.eu-west-1.amazonaws.com',
      'models/wine',
      undefined,
      undefined,
    ],
    ['[::1]:5000/wine:x', '[::1]:5000', '[::1]:5000', 'wine', 'x', undefined],
    ['acme/wine', 'docker.io', 'registry-1.docker.io', 'acme/wine', undefined, undefined],
  ])('%s', (input, registry, apiHost, repository, tag, digest) => {
    expect(parseImageRef(input)).toEqual({ registry, apiHost, repository, tag, digest })
  })

  test.each([
    ['', 'empty'],
    ['Acme/Wine', 'lower-case'],
    ['ghcr.io/acme/wine:', 'tag ""'],
    ['ghcr.io/acme/wine:-x', 'tag "-x"'],
    ['ghcr.io/acme/wine@sha256:abc', 'not a sha256 digest'],
    ['ghcr.io/acme//wine', 'repository component ""'],
    ['ghcr.io/acme/wine x', 'whitespace'],
    ['ghcr.io/acme/wi$ne', 'repository component "wi$ne"'],
  ])('rejects %j (%s)', (input, why) => {
    expect(() => parseImageRef(input)).toThrow(why)
  })

  test('formats and pins', () => {
    const ref = parseImageRef('127.0.0.1:5001/wine:v1')
    expect(formatImageRef(ref)).toBe('127.0.0.1:5001/wine:v1')
    expect(pinnedRef(ref, D)).toBe(`127.0.0.1:5001/wine@${D}`)
    expect(formatImageRef(parseImageRef('nginx'))).toBe('docker.io/library/nginx')
  })

  test.each([
    ['127.0.0.1:5001', true, 'http://127.0.0.1:5001'],
    ['localhost:5000', true, 'http://localhost:5000'],
    ['[::1]:5000', true, 'http://[::1]:5000'],
    ['ghcr.io', false, 'https://ghcr.io'],
    ['127.example.com', false, 'https://127.example.com'],
  ])('loopback %s', (host, loop, url) => {
    expect(isLoopbackRegistry(host)).toBe(loop)
    expect(registryBaseUrl(host)).toBe(url)
  })
})
