import { buildServingImage as build } from '../image/index.js'
import type { Stage } from './context.js'
import type { ImagePlanResult, PinnedImage } from './plan-image.js'
import type { ResolvedModelResult } from './resolve-model.js'

/** Only on a cache miss: download the model, build the serving image with buildx, push it. */
export const buildImage: Stage<
  Pick<ResolvedModelResult, 'details'> & ImagePlanResult,
  { image?: PinnedImage }
> = async ({ inputs, services, log, signal, report }, { details, plan: planned }) => {
  if (!planned) return { decision: 'no image to build', skipped: true }
  if (planned.decision === 'hit') return { decision: `cache hit: ${planned.ref} reused, build skipped`, skipped: true }

  const download = await services
    .mlflow()
    .download(details, { workDir: services.workDir, cache: services.modelCache(), signal })
  log.info(`model files ${download.cacheHit ? 'from the cache' : 'downloaded'}: ${download.dir}`)
  const built = await build(services.images(), {
    image: inputs.image,
    plan: planned,
    modelDir: download.dir,
    network: inputs.image.network,
    workDir: services.workDir,
  })
  report.set('image', built.image)
  report.set('digest', built.digest)
  return {
    decision: `built and pushed ${planned.ref} (${built.digest}) in ${built.seconds.toFixed(1)} s`,
    image: { ref: built.image, digest: built.digest },
  }
}
