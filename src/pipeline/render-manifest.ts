import { readFileSync } from 'node:fs'
import { dump } from 'js-yaml'
import { parseTemplate, renderManifest as render, shapeOf } from '../k8s/render.js'
import { storageUriFor } from '../mlflow/storage-uri.js'
import type { Inputs } from '../inputs.js'
import { need, type Services, type Stage } from './context.js'

/** The Service / InferenceService to apply: the built-in shape or the user's template. */
export const renderManifest: Stage = async ({ inputs, services, log, report, state }) => {
  const { cluster } = inputs
  const shape = shapeOf(cluster.target, cluster.serving)
  const model = state.details?.model
  const path = cluster.templatePath
  const template = path ? parseTemplate(readFileSync(path, 'utf8'), path) : undefined
  const manifest = render(
    {
      name: cluster.name,
      namespace: cluster.namespace,
      modelUri: need(inputs.model, 'the model URI').uri,
      modelName: model?.name,
      modelVersion: model?.version,
      runId: model?.runId,
      image: state.image?.ref,
      digest: state.image?.digest,
      storageUri:
        shape === 'kserve-mlflow' && model
          ? storageUriFor(model.artifactUri, inputs.mlflow.artifactsDestination)
          : undefined,
      gitSha: services.run.sha,
      workflowRunUrl: services.run.runUrl,
      preview: previewMeta(inputs, services),
    },
    { shape, ...cluster },
    template,
  )
  state.manifest = manifest
  const yaml = dump(manifest, { lineWidth: -1, noRefs: true })
  report.set('manifest', yaml)
  log.debug(yaml)
  const kind = `${String(manifest['kind'])} ${cluster.namespace}/${cluster.name}`
  return { decision: `${kind} from ${path ? `template ${path}` : 'the built-in template'}` }
}

/** Labels and expiry of a PR preview; the TTL counts from this deploy (each push renews it). */
function previewMeta(inputs: Inputs, services: Services) {
  const { enabled, prNumber, ttlMs } = inputs.preview
  if (!enabled || prNumber === undefined) return undefined
  return {
    pr: prNumber,
    repository: services.run.repository,
    expiresAt: ttlMs === undefined ? undefined : new Date(services.now() + ttlMs).toISOString(),
  }
}
