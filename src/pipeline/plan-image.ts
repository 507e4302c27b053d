import { modelFacts, planServingImage as plan, type ImagePlan } from '../image/index.js'
import { VERSION } from '../version.js'
import type { Stage } from './context.js'
import type { ResolvedModelResult } from './resolve-model.js'

/** The image to deploy, pinned by digest. */
export interface PinnedImage {
  readonly ref: string
  readonly digest: string
}

export interface ImagePlanResult {
  /** Undefined when no image is served (KServe's MLflow runtime). */
  readonly plan?: ImagePlan
  /** Known already on a cache hit. */
  readonly image?: PinnedImage
}

/** The model's content → an image tag; an image already carrying exactly this identity is reused. */
export const planImage: Stage<Pick<ResolvedModelResult, 'details'>, ImagePlanResult> = async (
  { inputs, services, report },
  { details },
) => {
  if (inputs.cluster.serving === 'mlflow-runtime') {
    return { decision: "no image: KServe's MLflow runtime serves the model from its storage", skipped: true }
  }
  const run = services.run
  const planned = await plan(services.images(), {
    image: inputs.image,
    model: modelFacts(details),
    generatorVersion: VERSION,
    labelExtras: { source: run.repository && `https://github.com/${run.repository}`, revision: run.sha },
  })
  report.set('cache-hit', String(planned.decision === 'hit'))
  if (planned.decision === 'hit') {
    const image = { ref: planned.image, digest: planned.digest }
    report.set('image', image.ref)
    report.set('digest', image.digest)
    return { decision: planned.reason, plan: planned, image }
  }
  return { decision: planned.reason, plan: planned }
}
