// MLflow model URIs, parsed the way MLflow's Python client does
// (mlflow/store/artifact/utils/models.py `_parse_model_uri`), without talking to a server.

export type ModelRef =
  | { kind: 'version'; uri: string; name: string; version: string }
  | { kind: 'alias'; uri: string; name: string; alias: string }
  | { kind: 'stage'; uri: string; name: string; stage: string }
  | { kind: 'latest'; uri: string; name: string }
  | { kind: 'logged-model'; uri: string; modelId: string }
  | { kind: 'run'; uri: string; runId: string; path: string }

export const MODEL_URI_FORMS =
  'models:/<name>/<version>, models:/<name>@<alias>, models:/<name>/<stage>, models:/<name>/latest or runs:/<run_id>/<path>'

/** Returns the parsed reference, or a string saying what is wrong with the URI. */
export function parseModelUri(uri: string): ModelRef | string {
  const text = uri.trim()
  if (text.startsWith('runs:/')) return parseRunsUri(text)
  if (!text.startsWith('models:/')) {
    return `"${uri}" is not a model URI; use ${MODEL_URI_FORMS}`
  }
  if (text.startsWith('models://')) {
    return `"${uri}" names a profile (models://<profile>/…); use models:/… and set tracking-uri instead`
  }
  const rest = text.slice('models:/'.length).replace(/\/+$/, '')
  if (!rest) return `"${uri}" has no model name; use ${MODEL_URI_FORMS}`

  // An alias is split off at the last '@' (names may contain '@', aliases may not).
  const at = rest.lastIndexOf('@')
  if (at >= 0 && !rest.slice(at).includes('/')) {
    const name = rest.slice(0, at)
    const alias = rest.slice(at + 1)
    if (!name) return `"${uri}" has no model name before '@'`
    if (!alias) return `"${uri}" has an empty alias after '@'`
    if (name.includes('/')) return `"${uri}": a model name cannot contain '/'`
    return { kind: 'alias', uri: text, name, alias }
  }

  const segments = rest.split('/')
  if (segments.length === 1) {
    // MLflow 3: models:/m-<id> addresses a LoggedModel directly.
    return { kind: 'logged-model', uri: text, modelId: segments[0]! }
  }
  if (segments.length > 2) {
    return `"${uri}" has a path inside the model (${segments.slice(2).join('/')}); deploy the model itself: ${MODEL_URI_FORMS}`
  }
  const [name, selector] = segments as [string, string]
  if (!name) return `"${uri}" has an empty model name`
  if (!selector) return `"${uri}" has no version, stage or 'latest' after the name`
  if (/^\d+$/.test(selector)) return { kind: 'version', uri: text, name, version: String(Number(selector)) }
  if (selector.toLowerCase() === 'latest') return { kind: 'latest', uri: text, name }
  return { kind: 'stage', uri: text, name, stage: selector }
}

function parseRunsUri(text: string): ModelRef | string {
  const rest = text.slice('runs:/'.length)
  const slash = rest.indexOf('/')
  const runId = slash < 0 ? rest : rest.slice(0, slash)
  const path = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '')
  if (!runId) return `"${text}" has no run id; use runs:/<run_id>/<path>`
  if (!/^[A-Za-z0-9_-]+$/.test(runId)) return `"${text}": run id "${runId}" is not a valid MLflow run id`
  if (!path) return `"${text}" has no artifact path; use runs:/<run_id>/<path>, e.g. runs:/${runId}/model`
  return { kind: 'run', uri: text, runId, path }
}

/** The registered model name, when the URI names one (runs:/ and logged-model URIs do not). */
export function registeredName(ref: ModelRef): string | undefined {
  return 'name' in ref ? ref.name : undefined
}
