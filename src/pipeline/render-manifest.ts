import { readFileSync } from 'node:fs'
import { dump } from 'js-yaml'
import { parseTemplate, renderServingManifest as render, shapeOf, type Manifest } from '../k8s/render.js'
import { storageUriFor } from '../mlflow/storage-uri.js'
import type { Inputs } from '../inputs.js'
import type { Services, Stage } from './context.js'
import type { ImagePlanResult } from './plan-image.js'
import type { ResolvedModelResult } from './resolve-model.js'

export interface RenderedManifest {
  readonly manifest: Manifest
  /** False while the manifest names a planned image that is not built yet. */
  readonly manifestImageBuilt: boolean
}

type RenderNeeds = ResolvedModelResult & ImagePlanResult

/**
 * The Service / InferenceService to apply: the built-in shape or the user's template. Before a
 * build (plan, render, or a deploy's checks) the image is the planned tag, marked as not built;
 * the deploy renders again once the image is pushed and pinned by digest.
 */
export const renderManifest: Stage<RenderNeeds, RenderedManifest> = async (
  { inputs, services, log, report },
  { modelUri, details, plan, image },
) => {
  const { cluster } = inputs
  const shape = shapeOf(cluster.target, cluster.serving)
  const model = details.model
  const unbuilt = !image && plan ? plan.ref : undefined
  const path = cluster.templatePath
  const template = path ? parseTemplate(readFileSync(path, 'utf8'), path) : undefined
  const manifest = render(
    {
      name: cluster.name,
      namespace: cluster.namespace,
      modelUri,
      modelName: model.name,
      modelVersion: model.version,
      runId: model.runId,
      image: image?.ref ?? unbuilt,
      digest: image?.digest,
      storageUri:
        shape === 'kserve-mlflow' ? storageUriFor(model.artifactUri, inputs.mlflow.artifactsDestination) : undefined,
      gitSha: services.run.sha,
      workflowRunUrl: services.run.runUrl,
      preview: previewMeta(inputs, services),
    },
    { shape, ...cluster },
    template,
  )
  const yaml = dump(manifest, { lineWidth: -1, noRefs: true })
  report.set('manifest', unbuilt ? `# ${notBuilt(unbuilt)}\n${yaml}` : yaml)
  log.debug(yaml)
  const kind = `${String(manifest['kind'])} ${cluster.namespace}/${cluster.name}`
  const from = path ? `template ${path}` : 'the built-in template'
  return {
    decision: `${kind} from ${from}${unbuilt ? `; ${notBuilt(unbuilt)}` : ''}`,
    manifest,
    manifestImageBuilt: !unbuilt,
  }
}

/** A deploy renders again once the image it planned is pushed: the manifest then pins its digest. */
export const pinImage: Stage<RenderNeeds & RenderedManifest, RenderedManifest> = async (ctx, results) => {
  if (results.manifestImageBuilt) {
    const { manifest, manifestImageBuilt } = results
    return { decision: 'the manifest already pins the image by digest', skipped: true, manifest, manifestImageBuilt }
  }
  const rendered = await renderManifest(ctx, results)
  return { ...rendered, decision: `${rendered.decision}; pins ${results.image?.ref ?? '?'}` }
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
