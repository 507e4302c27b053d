import { readFileSync } from 'node:fs'
import { dump } from 'js-yaml'
import { parseTemplate, renderManifest as render, shapeOf } from '../k8s/render.js'
import { storageUriFor } from '../mlflow/storage-uri.js'
import type { Inputs } from '../inputs.js'
import { need, type Services, type Stage } from './context.js'

/**
 * The Service / InferenceService to apply: the built-in shape or the user's template. Before a
 * build (plan, render, or a deploy's checks) the image is the planned tag, marked as not built;
 * the deploy renders again once the image is pushed and pinned by digest.
 */
export const renderManifest: Stage = async ({ inputs, services, log, report, state }) => {
  const { cluster } = inputs
  const shape = shapeOf(cluster.target, cluster.serving)
  const model = state.details?.model
  const unbuilt = !state.image && state.plan ? state.plan.ref : undefined
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
      image: state.image?.ref ?? unbuilt,
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
  state.manifestImageBuilt = !unbuilt
  const yaml = dump(manifest, { lineWidth: -1, noRefs: true })
  report.set('manifest', unbuilt ? `# ${notBuilt(unbuilt)}\n${yaml}` : yaml)
  log.debug(yaml)
  const kind = `${String(manifest['kind'])} ${cluster.namespace}/${cluster.name}`
  const from = path ? `template ${path}` : 'the built-in template'
  return { decision: `${kind} from ${from}${unbuilt ? `; ${notBuilt(unbuilt)}` : ''}` }
}

/** A deploy renders again once the image it planned is pushed: the manifest then pins its digest. */
export const pinImage: Stage = async (ctx) => {
  if (ctx.state.manifestImageBuilt) return { decision: 'the manifest already pins the image by digest', skipped: true }
  const rendered = await renderManifest(ctx)
  return { decision: `${rendered.decision}; pins ${ctx.state.image?.ref ?? '?'}` }
}

const notBuilt = (ref: string) => `image ${ref} is planned, not built yet (a deploy builds and pins it by digest)`

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
