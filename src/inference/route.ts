// Where the smoke test connects, and as whom. A service's URL names a host that the cluster's
// ingress routes by (http://wine.prod.example.com): the runner either resolves it (real DNS) or
// reaches the ingress some other way, e.g. a load balancer address or a port-forward, given as
// `ingress-address`. Then the request goes to that address with the URL's host as Host, so the
// ingress routes it exactly as it routes users' requests (a tag URL reaches the tagged revision).

export interface IngressOptions {
  /** `ingress-address`: origin to connect to instead of the URL's (scheme://host:port). */
  readonly address?: string
  /** `ingress-host`: a Host header that overrides the URL's host. */
  readonly host?: string
}

export interface Route {
  /** The origin and path requests go to. */
  readonly baseUrl: string
  /** Host header, when it differs from baseUrl's host. */
  readonly hostHeader?: string
}

export function smokeRoute(url: string, ingress: IngressOptions = {}): Route {
  if (!ingress.address) return { baseUrl: url, hostHeader: ingress.host }
  const service = new URL(url)
  const via = new URL(ingress.address)
  const path = service.pathname.replace(/\/+$/, '')
  return { baseUrl: `${via.origin}${path}`, hostHeader: ingress.host ?? service.host }
}

/**
 * Parses `ingress-address`: host:port, or http(s)://host[:port]. Returns the origin, or an error
 * message saying what is wrong.
 */
export function parseIngressAddress(value: string): { origin: string } | { error: string } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    return { error: `"${value}" is not an address: give host:port or http(s)://host:port` }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { error: `"${value}": only http:// and https:// ingresses are supported` }
  }
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    return { error: `"${value}" must be only scheme://host:port (no credentials, path or query)` }
  }
  return { origin: url.origin }
}
