// The smoke test: a real V2 inference (inference/) on the new revision, while the cluster watches
// its rollout and rolls an update back when either fails (k8s/).
import { smokeRoute, type IngressOptions } from '../inference/route.js'
import { runSmokeTest, type SmokeModel, type SmokeResult } from '../inference/smoke.js'
import { V2Client } from '../inference/v2.js'
import type { Deployment, RolloutWaitOptions, ServingCluster } from '../k8s/index.js'
import { describe } from '../k8s/kube.js'
import { systemClock, type Clock } from '../util/clock.js'
import { DeployError } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { AppliedResult } from './apply.js'
import type { Stage } from './context.js'
import { smokeModel } from './prepare-smoke-test.js'
import type { ResolvedModelResult } from './resolve-model.js'
import { reportRollout, rolloutWait, type ReadyResult } from './wait-ready.js'

/** A real V2 inference on the new revision's own URL; a failure after an update rolls back. */
export const smokeTest: Stage<
  Pick<ResolvedModelResult, 'details'> & Pick<AppliedResult, 'budget'> & ReadyResult,
  { smoke?: SmokeResult }
> = async ({ inputs, services, signal, report, log }, { details, budget, deployment }) => {
  if (!inputs.flow.smokeTest) return { decision: 'skipped (smoke-test: false)', skipped: true }
  // The inputs refuse smoke-test without wait: there is always a ready deployment here.
  if (!deployment) return { decision: 'skipped: nothing was waited for (wait: false)', skipped: true }
  if (inputs.flow.ingressHost) {
    log.warning(
      'ingress-host is deprecated and will be removed: set ingress-address (where the ingress is) instead; ' +
        'the Host header then follows the URL under test, so a tag or preview URL reaches its own revision',
    )
  }
  const smoke = await smokeTestDeployment(
    { cluster: services.cluster(), log },
    deployment,
    smokeModel(inputs, details),
    {
      ...rolloutWait(budget, inputs.flow, signal),
      ingress: { host: inputs.flow.ingressHost, address: inputs.flow.ingressAddress },
    },
  ).catch((err: unknown) => reportRollout(report, err))
  const outputs = smoke.outputs.map((o) => `${o.name} [${o.shape.join(',')}]`).join(', ')
  const decision = `passed: ${outputs} from the ${smoke.source} in ${Math.round(smoke.latencyMs)} ms`
  report.smokeTest = decision
  return { decision, smoke }
}

export interface SmokeTestDeps {
  readonly cluster: ServingCluster
  readonly log: Logger
  readonly clock?: Clock
}

/**
 * Calls the deployed model over V2 (ready, then infer) and checks its outputs, while the cluster
 * watches the rollout: when its controller or pods report the new revision failed, the smoke test
 * stops at once. A failure after an update rolls back (RolloutError says so).
 */
export async function smokeTestDeployment(
  { cluster, log, clock = systemClock }: SmokeTestDeps,
  deployed: Deployment,
  model: Omit<SmokeModel, 'name'> & { name?: string },
  options: RolloutWaitOptions & { ingress?: IngressOptions; rollBack?: boolean },
): Promise<SmokeResult> {
  // An ingress address reaches the URL users call; without one, KServe Standard's predictor
  // Service is the address a runner inside the cluster's network reaches.
  const url = options.ingress?.address ? deployed.smokeUrl : (deployed.directUrl ?? deployed.smokeUrl)
  if (!url) throw new DeployError(`${describe(deployed.applied)} reports no URL to smoke-test`)
  if (url === deployed.directUrl) log.info(`Standard mode: the smoke test calls the predictor Service at ${url}`)
  const route = smokeRoute(url, options.ingress)
  const client = new V2Client({ ...route, log, clock })
  const name = model.name ?? deployed.name
  const via = route.baseUrl === url ? '' : ` via ${route.baseUrl}`
  log.info(`smoke test: POST ${url}/v2/models/${name}/infer${via}`)
  try {
    return await cluster.verify(
      deployed,
      async (signal) => {
        if (options.timeoutMs < 1_000) {
          throw new DeployError('no time left for the smoke test within timeout: the wait used it; raise timeout')
        }
        const result = await runSmokeTest(
          client,
          { ...model, name },
          { budgetMs: options.timeoutMs, clock, log, signal },
        )
        log.info(
          `smoke test passed: ${result.outputs.map((o) => `${o.name} [${o.shape}] ${o.datatype}`).join(', ')} ` +
            `in ${Math.round(result.latencyMs)} ms (ready after ${Math.round(result.readyMs)} ms): ${JSON.stringify(result.sample).slice(0, 200)}`,
        )
        return result
      },
      options,
    )
  } finally {
    await client.close()
  }
}
