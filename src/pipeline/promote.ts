import { DeployError, errorMessage } from '../util/errors.js'
import { need, type Stage } from './context.js'

export const DEPLOYED_TAG_PREFIX = 'mlflow-k8s-deploy'

/**
 * After a verified deploy: set the alias and tag the version with where it runs, so the registry
 * tells the truth about what is live. The deployment stands even if MLflow refuses.
 */
export const promote: Stage = async ({ inputs, services, signal, state, report }) => {
  const alias = inputs.flow.promoteAlias
  if (!alias) return { decision: 'no promote-alias', skipped: true }
  const model = need(state.details, 'the model').model
  const name = need(model.name, 'the registered name')
  const version = need(model.version, 'the version')
  const client = services.mlflow().client
  try {
    await client.setAlias(name, alias, version, signal)
    const tags: Record<string, string | undefined> = {
      url: report.outputs.url,
      namespace: inputs.cluster.namespace,
      name: inputs.cluster.name,
      'image-digest': state.image?.digest,
    }
    for (const [key, value] of Object.entries(tags)) {
      if (value) await client.setModelVersionTag(name, version, `${DEPLOYED_TAG_PREFIX}.${key}`, value, signal)
    }
  } catch (err) {
    state.promotionFailed = true
    throw new DeployError(
      `the deployment stands, but alias "${alias}" was not set on ${name} v${version}: ${errorMessage(err)}`,
    )
  }
  return { decision: `alias ${alias} → ${name} v${version}; version tagged with its URL and digest` }
}
