// Turning what a server (or the network) did into one line that says what to fix. Pure functions,
// tested from tables; the clients only pick the right one.
import { DeployError } from '../util/errors.js'
import { type HttpConnectionError, redact } from '../util/http.js'
import { connectionFailureMessage } from '../util/net-errors.js'

/** An MLflow (or identity provider) failure; `status`/`code` are kept for callers that branch. */
export class MlflowError extends DeployError {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message)
  }
}

/**
 * One line for a request that got no HTTP answer. `what` names the server ("MLflow at
 * http://x"), `urlInput` the input that holds its URL.
 */
export function connectionMessage(err: HttpConnectionError, what: string, urlInput: string): string {
  return connectionFailureMessage(err, {
    what,
    urlInput,
    expected: 'the MLflow server',
    trust: 'give its CA with mlflow-ca-cert, or set mlflow-insecure-tls: true (not recommended)',
  })
}

// Servers label plain text as text/html (MLflow's basic-auth 401 does): trust the content.
function looksHtml(contentType: string | undefined, text: string): boolean {
  return /^\s*<(!doctype|html)/i.test(text) || (/html/i.test(contentType ?? '') && /<[a-z!/][^>]*>/i.test(text))
}

/** The first meaningful line of a non-JSON body: an HTML page's title or first text, or the text. */
export function firstLine(contentType: string | undefined, text: string): string {
  let body = text
  if (looksHtml(contentType, text)) {
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1]?.trim()
    const h1 = /<h1[^>]*>([^<]*)<\/h1>/i.exec(text)?.[1]?.trim()
    body =
      title || h1 || text.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]+>/g, '\n')
  }
  const line = body
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.length > 0)
  if (!line) return '(empty body)'
  return line.length > 160 ? `${line.slice(0, 157)}...` : line
}

export function bodyKind(contentType: string | undefined, text: string): string {
  if (looksHtml(contentType, text)) return 'an HTML page'
  if (!text.trim()) return 'an empty body'
  return 'plain text'
}

/** MLflow's error JSON (`{error_code, message}`), or the plugin's `{detail}`; undefined when not JSON. */
export function parseErrorJson(text: string): { code?: string; message: string } | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const v = value as Record<string, unknown>
  if (typeof v.error_code === 'string' || typeof v.message === 'string') {
    const message = String(v.message ?? v.error_code)
    return { code: typeof v.error_code === 'string' ? v.error_code : undefined, message: message.split('\n')[0]! }
  }
  if (v.detail !== undefined) return { message: typeof v.detail === 'string' ? v.detail : JSON.stringify(v.detail) }
  if (typeof v.error === 'string') return { code: v.error, message: String(v.error_description ?? v.error) }
  return undefined
}

export interface HttpFailure {
  readonly status: number
  readonly contentType: string | undefined
  readonly text: string
  readonly method: string
  readonly url: string
  /** What the server is, e.g. "MLflow at http://x". */
  readonly server: string
  /** describe() of the credentials sent. */
  readonly credential: string
  readonly anonymous: boolean
}

/** One line for a non-2xx answer from MLflow (or a gateway in front of it). */
export function httpFailureMessage(f: HttpFailure): { message: string; code?: string } {
  const parsed = parseErrorJson(f.text)
  const said = parsed ? `${parsed.code ? `${parsed.code}: ` : ''}${parsed.message}` : undefined
  const evidence =
    said ?? `${bodyKind(f.contentType, f.text)} instead of MLflow JSON: "${firstLine(f.contentType, f.text)}"`
  const where = `${f.method} ${redact(f.url)}`
  if (f.status === 401) {
    if (f.anonymous)
      return {
        code: parsed?.code,
        message: `${f.server} requires authentication (401; ${evidence}): set mlflow-token, mlflow-username/mlflow-password or oidc-* inputs`,
      }
    return {
      code: parsed?.code,
      message: `${f.server} rejected the credentials (401; ${evidence}); sent ${f.credential}: check that they are right and current`,
    }
  }
  if (f.status === 403)
    return {
      code: parsed?.code,
      // Reads need READ; setting aliases and tags (POST/PATCH/DELETE) needs EDIT.
      message: `${f.server} denied access (403; ${evidence}); sent ${f.credential}: grant that identity ${f.method === 'GET' ? 'READ' : 'EDIT'} on the model/experiment`,
    }
  if (parsed) return { code: parsed.code, message: `${f.server}: ${said} (HTTP ${f.status}, ${where})` }
  const hint =
    f.status === 404
      ? `; is tracking-uri the MLflow server (with its path prefix, if any)?`
      : f.status === 503 && /serve-artifacts/i.test(f.text)
        ? '; the server runs with --no-serve-artifacts, so artifacts cannot be fetched through it'
        : ''
  return { message: `${f.server} answered HTTP ${f.status} with ${evidence} (${where})${hint}` }
}
