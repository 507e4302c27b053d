import { DeployError, errorMessage } from '../util/errors.js'
import type { Stage } from './context.js'
import type { PinnedImage } from './plan-image.js'
import type { ResolvedModelResult } from './resolve-model.js'

export const DEPLOYED_TAG_PREFIX = 'mlflow-k8s-deploy'

/**
 * After a verified deploy: set the alias and tag the version with where it runs, so the registry
 * tells the truth about what is live. The deployment stands even if MLflow refuses.
 */
export const promote: Stage<Pick<ResolvedModelResult, 'details'> & { image?: PinnedImage }> = async (
  { inputs, services, signal, state, report },
  { details, image },
) => {
  const alias = inputs.flow.promoteAlias
  if (!alias) return { decision: 'no promote-alias', skipped: true }
  const { name, version } = details.model
  // The inputs allow promote-alias only with a registered model (models:/…), which has both.
  if (!name || !version)
    throw new DeployError(`promote-alias needs a registered model version; ${details.model.uri} is not one`)
  const client = services.mlflow().client
  try {
    await client.setAlias(name, alias, version, signal)
    const tags: Record<string, string | undefined> = {
      url: report.outputs.url,
      namespace: inputs.cluster.namespace,
      name: inputs.cluster.name,
      'image-digest': image?.digest,
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
