import type { ModelDetails } from '../mlflow/index.js'
import { formatBytes } from '../util/bytes.js'
import { InputError } from '../util/errors.js'
import type { Stage } from './context.js'

export interface ResolvedModelResult {
  /** The model URI as given (models:/… or runs:/…). */
  readonly modelUri: string
  readonly details: ModelDetails
}

/** models:/… or runs:/… → the exact version, its run, its real artifact location and what is inside. */
export const resolveModel: Stage<object, ResolvedModelResult> = async ({ inputs, services, log, signal, report }) => {
  // Only action cleanup runs without a model URI, and it resolves none.
  if (!inputs.model) throw new InputError('model-uri', `required for action ${inputs.action}`)
  const { uri, ref } = inputs.model
  const mlflow = services.mlflow()
  log.info(`resolving ${uri} at ${mlflow.client.trackingUri} (${mlflow.auth.describe()})`)
  const model = await mlflow.resolve(ref, signal)
  report.set('model-name', model.name)
  report.set('model-version', model.version)
  report.set('run-id', model.runId)
  const details = await mlflow.inspect(model, signal)
  const what = model.name ? `${model.name} v${model.version}` : model.uri
  return {
    decision: `${what}${model.runId ? ` (run ${model.runId})` : ''} at ${model.artifactUri}: ${details.files.length} files, ${formatBytes(details.totalBytes)}`,
    modelUri: uri,
    details,
  }
}
