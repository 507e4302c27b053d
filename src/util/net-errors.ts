// Why a request got no HTTP answer, in words that say what to fix. One vocabulary of system,
// undici and TLS codes for every outside system (MLflow, registries, GitHub, the inference
// endpoint, the Kubernetes API server); each client names only the server and its fixes.

/** The code of a failed connection; undici keeps the socket's (or TLS's) error as `cause`. */
export function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null | undefined
  const code = e?.cause?.code ?? e?.code
  return typeof code === 'string' ? code : undefined
}

// OpenSSL's verification results as Node reports them (node's crypto docs, "Certificate errors").
const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
])

export type ConnectionFailure =
  | 'refused'
  | 'host-not-found'
  | 'no-route'
  | 'connect-timeout'
  /** Connected, but no answer (or no whole body) in time. */
  | 'answer-timeout'
  /** An https:// URL, answered in plain HTTP. */
  | 'not-tls'
  /** The server's certificate did not verify. */
  | 'certificate'
  /** A plain-HTTP connection closed without an answer: often a TLS server. */
  | 'closed'
  | 'other'

/** What kind of failure a code (and the error's message) means, for a URL of either scheme. */
export function classifyConnectionFailure(code: string, message: string, https: boolean): ConnectionFailure {
  if (code === 'ECONNREFUSED') return 'refused'
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host-not-found'
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'no-route'
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'connect-timeout'
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'answer-timeout'
  if (
    https &&
    (code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
      code === 'EPROTO' ||
      /wrong version number|packet length too long/i.test(message))
  )
    return 'not-tls'
  if (CERTIFICATE_CODES.has(code) || /certificate/i.test(message)) return 'certificate'
  if (!https && (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'HPE_INVALID_CONSTANT')) return 'closed'
  return 'other'
}

/** A server as the messages name it, and how to fix what can be wrong with reaching it. */
export interface Endpoint {
  /** "MLflow at http://m:5000", "registry ghcr.io (https://ghcr.io)". */
  readonly what: string
  /** The input that holds its URL. Without one, messages name the code, the one exact handle. */
  readonly urlInput?: string
  /** What the URL should point at, for a server that connects but never answers: "the MLflow server". */
  readonly expected?: string
  /** How to make its certificate trusted: "give its CA with mlflow-ca-cert". */
  readonly trust: string
}

/** One line for a request to `url` that failed with `code` and `message` before any HTTP answer. */
export function connectionFailureMessage(
  failure: { readonly url: string; readonly code: string; readonly message: string },
  to: Endpoint,
): string {
  const { code, url } = failure
  // HttpConnectionError's message starts with the URL; the rest is what the socket said.
  const detail = failure.message.replace(/^.*?: /, '')
  const { what, urlInput } = to
  const cannot = (why: string) =>
    urlInput ? `cannot reach ${what}: ${why}; check ${urlInput}` : `cannot reach ${what}: ${code}, ${why}`
  const useScheme = (scheme: string) => (urlInput ? `use ${scheme} in ${urlInput}` : `use an ${scheme} URL`)
  switch (classifyConnectionFailure(code, failure.message, url.startsWith('https:'))) {
    case 'refused':
      return cannot('connection refused (is the server up, is the port right?)')
    case 'host-not-found':
      return cannot('host not found')
    case 'no-route':
      return cannot('no route to host')
    case 'connect-timeout':
      return cannot('connection timed out (firewall, or a private address?)')
    case 'answer-timeout':
      return urlInput && to.expected
        ? `${what} accepted the connection but did not answer in time; is ${urlInput} ${to.expected}?`
        : `${what} accepted the connection but did not answer in time (${code})`
    case 'not-tls':
      return `${what} does not speak TLS (it answered plain HTTP to an https:// URL): ${useScheme('http://')}`
    case 'certificate':
      return `TLS verification of ${what} failed (${code}: ${detail}): ${to.trust}`
    case 'closed':
      return `${what} closed the connection without an HTTP answer (${code}); if it serves TLS, ${useScheme('https://')}`
    case 'other':
      return `request to ${what} failed: ${code} (${detail})`
  }
}

/** The fix for an untrusted certificate of a server the action reaches with Node's default CAs. */
export const TRUST_VIA_NODE = 'make the runner trust its CA (NODE_EXTRA_CA_CERTS names a PEM file of extra CAs)'
