// The GitHub Actions edge: @actions/core for inputs, masking, logs, outputs, summary and failure.
import * as core from '@actions/core'
import { runAction, type RunOptions } from './run-action.js'

export async function run(options: RunOptions = {}): Promise<void> {
  await runAction(
    {
      getInput: (name) => core.getInput(name),
      env: process.env,
      mask: (secret) => core.setSecret(secret),
      log: {
        info: (m) => core.info(m),
        warning: (m) => core.warning(m),
        debug: (m) => core.debug(m),
        group: (title, fn) => core.group(title, fn),
      },
      setOutput: (name, value) => core.setOutput(name, value),
      writeSummary: process.env['GITHUB_STEP_SUMMARY']
        ? async (markdown) => void (await core.summary.addRaw(markdown).write())
        : undefined,
      setFailed: (message) => core.setFailed(message),
      getIdToken: (audience) => core.getIDToken(audience),
    },
    options,
  )
}
