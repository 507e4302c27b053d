import { buildImage as build } from '../image/index.js'
import { need, type Stage } from './context.js'

/** Only on a cache miss: download the model, build the serving image with buildx, push it. */
export const buildImage: Stage = async ({ inputs, services, log, signal, report, state }) => {
  const planned = state.plan
  if (!planned) return { decision: 'no image to build', skipped: true }
  if (planned.decision === 'hit') return { decision: `cache hit: ${planned.ref} reused, build skipped`, skipped: true }

  const details = need(state.details, 'the model')
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
  state.image = { ref: built.image, digest: built.digest }
  report.set('image', built.image)
  report.set('digest', built.digest)
  return { decision: `built and pushed ${planned.ref} (${built.digest}) in ${built.seconds.toFixed(1)} s` }
}
