// Runs the committed bundle exactly as a GitHub runner does: `node dist/index.js` with INPUT_*
// variables and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files. Only the variables given are set.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { ACTION_INPUTS, type ActionInput } from '../../src/generated/action-inputs.js'
import { parseDuration } from '../../src/util/duration.js'

const DIST = join(import.meta.dirname, '../../dist/index.js')

/** Below jest's testTimeout (jest.config.js): a run is ended before jest gives up on its test. */
export const KILL_AFTER_MS = 170_000
/** The action's own `timeout` must leave it time to roll back and report before the kill. */
const TIMEOUT_MARGIN_MS = 20_000

// A test that times out abandons its run's promise: end every run still alive when the file is
// done, so no orphaned action keeps changing the cluster under later suites.
const live = new Set<ChildProcess>()
const endAll = () => {
  for (const child of live) child.kill('SIGKILL')
}
// Under jest: when the test file is done. Elsewhere (bench/): when the process exits.
if (typeof afterAll === 'function') afterAll(endAll)
else process.once('exit', endAll)

export interface ActionRun {
  readonly status: number | null
  readonly stdout: string
  readonly outputs: Record<string, string>
  readonly summary: string
  readonly errors: string[]
  readonly seconds: number
  /** True when the run outlived killAfterMs and was ended by the test harness. */
  readonly killed: boolean
}

export interface RunOptions {
  /** End the action after this long (default KILL_AFTER_MS); its `timeout` input must fit inside. */
  readonly killAfterMs?: number
  /** Called with each line the action prints, as it prints it: a test acts at a stage of the run. */
  readonly onLine?: (line: string) => void
}

export async function runDist(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  { killAfterMs = KILL_AFTER_MS, onLine }: RunOptions = {},
): Promise<ActionRun> {
  const budget = killAfterMs - TIMEOUT_MARGIN_MS
  if (inputs['timeout'] === undefined) inputs = { ...inputs, timeout: `${Math.floor(budget / 1000)}s` }
  else if ((parseDuration(inputs['timeout']) ?? Infinity) > budget) {
    throw new Error(`test misconfigured: timeout ${inputs['timeout']} does not fit in the ${killAfterMs} ms run limit`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'action-'))
  const outputFile = join(dir, 'output')
  const summaryFile = join(dir, 'summary')
  writeFileSync(outputFile, '')
  writeFileSync(summaryFile, '')
  const fullEnv: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HOME: dir,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    RUNNER_TEMP: dir,
    ...env,
  }
  // As the runner does, an input the workflow omits gets action.yml's default.
  for (const [k, meta] of Object.entries<ActionInput>(ACTION_INPUTS)) {
    if (meta.default !== undefined && !(k in inputs)) fullEnv[`INPUT_${k.toUpperCase()}`] = meta.default
  }
  for (const [k, v] of Object.entries(inputs)) fullEnv[`INPUT_${k.toUpperCase()}`] = v
  const started = performance.now()
  const child = spawn(process.execPath, [DIST], { env: fullEnv })
  live.add(child)
  let stdout = ''
  let seen = 0
  let killed = false
  const take = (d: Buffer) => {
    stdout += d.toString()
    if (!onLine) return
    const end = stdout.lastIndexOf('\n') + 1
    if (end > seen) for (const line of stdout.slice(seen, end - 1).split('\n')) onLine(line)
    seen = Math.max(seen, end)
  }
  child.stdout.on('data', take)
  child.stderr.on('data', take)
  // As GitHub cancels a job: SIGTERM (the action aborts its waits), SIGKILL if it lingers.
  const timer = setTimeout(() => {
    killed = true
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref()
  }, killAfterMs)
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  live.delete(child)
  return {
    status,
    stdout,
    outputs: parseOutputFile(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
    errors: stdout.split('\n').filter((l) => l.startsWith('::error::')),
    seconds: (performance.now() - started) / 1000,
    killed,
  }
}

/** GITHUB_OUTPUT uses `name<<DELIMITER\nvalue\nDELIMITER` blocks. */
function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of text.matchAll(/^([\w-]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) out[m[1]!] = m[3]!
  return out
}
