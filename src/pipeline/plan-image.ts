import { modelFacts, planImage as plan } from '../image/index.js'
import { VERSION } from '../version.js'
import { need, type Stage } from './context.js'

/** The model's content → an image tag; an image already carrying exactly this identity is reused. */
export const planImage: Stage = async ({ inputs, services, report, state }) => {
  if (inputs.cluster.serving === 'mlflow-runtime') {
    return { decision: "no image: KServe's MLflow runtime serves the model from its storage", skipped: true }
  }
  const details = need(state.details, 'the model')
  const run = services.run
  const planned = await plan(services.images(), {
    image: inputs.image,
    model: modelFacts(details),
    generatorVersion: VERSION,
    labelExtras: { source: run.repository && `https://github.com/${run.repository}`, revision: run.sha },
  })
  state.plan = planned
  report.set('cache-hit', String(planned.decision === 'hit'))
  if (planned.decision === 'hit') {
    state.image = { ref: need(planned.image, 'the cached image'), digest: need(planned.digest, 'its digest') }
    report.set('image', state.image.ref)
    report.set('digest', state.image.digest)
  }
  return { decision: planned.reason }
}
