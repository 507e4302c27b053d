import { formatBytes } from '../util/bytes.js'
import { need, type Stage } from './context.js'

/** models:/… or runs:/… → the exact version, its run, its real artifact location and what is inside. */
export const resolveModel: Stage = async ({ inputs, services, log, signal, report, state }) => {
  const mlflow = services.mlflow()
  const { uri, ref } = need(inputs.model, 'the model URI')
  log.info(`resolving ${uri} at ${mlflow.client.trackingUri} (${mlflow.auth.describe()})`)
  const model = await mlflow.resolve(ref, signal)
  report.set('model-name', model.name)
  report.set('model-version', model.version)
  report.set('run-id', model.runId)
  const details = await mlflow.inspect(model, signal)
  state.details = details
  const what = model.name ? `${model.name} v${model.version}` : model.uri
  return {
    decision: `${what}${model.runId ? ` (run ${model.runId})` : ''} at ${model.artifactUri}: ${details.files.length} files, ${formatBytes(details.totalBytes)}`,
  }
}
