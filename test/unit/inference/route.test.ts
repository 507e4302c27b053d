import { describe, expect, it } from '@jest/globals'
import { parseIngressAddress, smokeRoute } from '../../../src/inference/route.js'

describe('smokeRoute', () => {
  it.each([
    [
      'no ingress options: the URL as is',
      'http://wine.prod.example.com',
      {},
      'http://wine.prod.example.com',
      undefined,
    ],
    ['ingress-host only', 'http://10.0.0.7', { host: 'wine.example.com' }, 'http://10.0.0.7', 'wine.example.com'],
    [
      'ingress-address: connect there, the URL host as Host',
      'http://wine.prod.rig.test',
      { address: 'http://127.0.0.1:18080' },
      'http://127.0.0.1:18080',
      'wine.prod.rig.test',
    ],
    [
      'a tag URL keeps its own host (the ingress routes it to the tagged revision)',
      'http://candidate-wine.prod.rig.test',
      { address: 'http://127.0.0.1:18080' },
      'http://127.0.0.1:18080',
      'candidate-wine.prod.rig.test',
    ],
    [
      'a port in the URL stays in Host',
      'http://wine.prod.rig.test:8080/',
      { address: 'http://lb:80' },
      'http://lb',
      'wine.prod.rig.test:8080',
    ],
    [
      'a path prefix in the URL is kept',
      'https://models.example.com/wine/',
      { address: 'https://10.1.2.3:8443' },
      'https://10.1.2.3:8443/wine',
      'models.example.com',
    ],
    [
      'ingress-host overrides the URL host',
      'http://wine.prod.rig.test',
      { address: 'http://127.0.0.1:18080', host: 'other.example.com' },
      'http://127.0.0.1:18080',
      'other.example.com',
    ],
  ])('%s', (_, url, ingress, baseUrl, hostHeader) => {
    expect(smokeRoute(url, ingress)).toEqual({ baseUrl, hostHeader })
  })
})

describe('parseIngressAddress', () => {
  it.each([
    ['127.0.0.1:18080', 'http://127.0.0.1:18080'],
    ['http://lb.example.com', 'http://lb.example.com'],
    ['https://lb.example.com:8443/', 'https://lb.example.com:8443'],
    ['[::1]:8080', 'http://[::1]:8080'],
  ])('%s → %s', (value, origin) => {
    expect(parseIngressAddress(value)).toEqual({ origin })
  })

  it.each([
    ['ftp://lb:21', /only http/],
    ['http://lb:8080/path', /no credentials, path or query/],
    ['http://user:pw@lb', /no credentials/],
    ['lb:notaport', /not an address/],
  ])('%s is refused', (value, message) => {
    const parsed = parseIngressAddress(value)
    expect('error' in parsed && parsed.error).toMatch(message)
  })
})
