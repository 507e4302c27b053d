// One run of the action, whoever drives it: the GitHub runner (main.ts, through @actions/core) or
// a terminal / another CI system (cli.ts). Inputs are parsed once, the pipeline runs, and the
// outputs and summary are published once, success or failure.
import { rm } from 'node:fs/promises'
import { readRunContext } from './github-context.js'
import { parseInputs, type Inputs } from './inputs.js'
import type { Services } from './pipeline/context.js'
import { runPipeline } from './pipeline/run.js'
import { OUTPUT_NAMES, Report, type OutputName } from './report/report.js'
import { renderSummary } from './report/summary.js'
import { createServices } from './services.js'
import { deadline, systemClock } from './util/clock.js'
import { errorMessage } from './util/errors.js'
import type { Logger } from './util/logger.js'

/** The edges of a run: where inputs come from and where results go. */
export interface ActionIO {
  getInput(name: string): string
  readonly env: Readonly<Record<string, string | undefined>>
  mask(secret: string): void
  readonly log: Logger
  setOutput(name: OutputName, value: string): void
  /** Writes the Markdown summary; undefined where there is nowhere to write it. */
  writeSummary?: (markdown: string) => Promise<void>
  setFailed(message: string): void
  getIdToken(audience: string | undefined): Promise<string>
}

export interface RunOptions {
  /** Replaces the outside systems (tests). */
  services?: (inputs: Inputs, signal: AbortSignal) => Services
  signal?: AbortSignal
}

const MODEL_UPLOAD_GRACE_MS = 600_000

/** Runs the action; returns true on success. Failures are reported through io.setFailed. */
export async function runAction(io: ActionIO, options: RunOptions = {}): Promise<boolean> {
  let inputs: Inputs
  try {
    inputs = parseInputs({ get: (n) => io.getInput(n), env: io.env, mask: (s) => io.mask(s) })
  } catch (err) {
    io.setFailed(errorMessage(err))
    return false
  }

  const report = new Report()
  const signal = options.signal ?? cancelOnSignals()
  let services: Services | undefined
  try {
    services =
      options.services?.(inputs, signal) ??
      createServices(inputs, {
        env: io.env,
        log: io.log,
        mask: (s) => io.mask(s),
        getIdToken: (audience) => io.getIdToken(audience),
        run: readRunContext(io.env),
        signal,
      })
    await runPipeline({ inputs, services, log: io.log, signal, report, state: {} }, { now: () => performance.now() })
  } catch (err) {
    report.failure = errorMessage(err)
    io.log.debug(err instanceof Error && err.stack ? err.stack : String(err))
    io.setFailed(report.failure)
  } finally {
    for (const name of OUTPUT_NAMES) {
      const value = report.outputs[name]
      if (value !== undefined) io.setOutput(name, value)
    }
    if (io.writeSummary) {
      const title = `mlflow-k8s-deploy: ${inputs.action} ${inputs.model?.uri ?? 'previews'}`
      await io.writeSummary(renderSummary(report, title)).catch((err: unknown) => {
        io.log.warning(`could not write the job summary: ${errorMessage(err)}`)
      })
    }
    if (services) {
      // A model upload to the Actions cache runs beside the deploy; it gets at most 10 more minutes.
      const grace = deadline(systemClock, MODEL_UPLOAD_GRACE_MS, 'the model upload', signal)
      await services.modelCache()?.settle?.(grace.signal)
      grace.dispose()
      await rm(services.workDir, { recursive: true, force: true }).catch(() => undefined)
    }
  }
  return report.failure === undefined
}

/** GitHub cancels a job with SIGINT, then SIGTERM (a terminal with Ctrl-C): abort every wait. */
function cancelOnSignals(): AbortSignal {
  const controller = new AbortController()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => controller.abort(new Error(`cancelled by ${sig}`)))
  }
  return controller.signal
}
