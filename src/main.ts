// The composition root and the one place that talks to @actions/core for inputs, outputs,
// summary and failure.
import { rm } from 'node:fs/promises'
import * as core from '@actions/core'
import { readRunContext } from './github-context.js'
import { parseInputs, type Inputs } from './inputs.js'
import type { Services } from './pipeline/context.js'
import { runPipeline } from './pipeline/run.js'
import { OUTPUT_NAMES, Report } from './report/report.js'
import { renderSummary } from './report/summary.js'
import { createServices } from './services.js'
import { errorMessage } from './util/errors.js'
import type { Logger } from './util/logger.js'

const coreLogger: Logger = {
  info: (m) => core.info(m),
  warning: (m) => core.warning(m),
  debug: (m) => core.debug(m),
  group: (title, fn) => core.group(title, fn),
}

export interface RunOptions {
  /** Replaces the outside systems (tests). */
  services?: (inputs: Inputs, signal: AbortSignal) => Services
  signal?: AbortSignal
}

export async function run(options: RunOptions = {}): Promise<void> {
  let inputs: Inputs
  try {
    inputs = parseInputs({ get: (name) => core.getInput(name), env: process.env, mask: (s) => core.setSecret(s) })
  } catch (err) {
    core.setFailed(errorMessage(err))
    return
  }

  const report = new Report()
  const signal = options.signal ?? cancelOnSignals()
  let services: Services | undefined
  try {
    services =
      options.services?.(inputs, signal) ??
      createServices(inputs, {
        env: process.env,
        log: coreLogger,
        mask: (s) => core.setSecret(s),
        getIdToken: (audience) => core.getIDToken(audience),
        run: readRunContext(process.env),
        signal,
      })
    await runPipeline(
      { inputs, services, log: coreLogger, signal, report, state: {} },
      { now: () => performance.now() },
    )
  } catch (err) {
    report.failure = errorMessage(err)
    core.debug(err instanceof Error && err.stack ? err.stack : String(err))
    core.setFailed(report.failure)
  } finally {
    await publish(report, inputs)
    if (services) await rm(services.workDir, { recursive: true, force: true }).catch(() => undefined)
  }
}

/** Outputs and the job summary: written once, whatever happened. */
async function publish(report: Report, inputs: Inputs): Promise<void> {
  for (const name of OUTPUT_NAMES) {
    const value = report.outputs[name]
    if (value !== undefined) core.setOutput(name, value)
  }
  if (!process.env['GITHUB_STEP_SUMMARY']) return
  const title = `mlflow-k8s-deploy: ${inputs.action} ${inputs.model?.uri ?? 'previews'}`
  try {
    await core.summary.addRaw(renderSummary(report, title)).write()
  } catch (err) {
    core.warning(`could not write the job summary: ${errorMessage(err)}`)
  }
}

/** GitHub cancels a job with SIGINT, then SIGTERM: abort every wait cleanly. */
function cancelOnSignals(): AbortSignal {
  const controller = new AbortController()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => controller.abort(new Error(`cancelled by ${sig}`)))
  }
  return controller.signal
}
