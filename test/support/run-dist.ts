// Runs the committed bundle exactly as a GitHub runner does: `node dist/index.js` with INPUT_*
// variables and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files. Only the variables given are set.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const DIST = join(import.meta.dirname, '../../dist/index.js')

export interface ActionRun {
  readonly status: number | null
  readonly stdout: string
  readonly outputs: Record<string, string>
  readonly summary: string
  readonly errors: string[]
  readonly seconds: number
}

export async function runDist(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun> {
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
  for (const [k, v] of Object.entries(inputs)) fullEnv[`INPUT_${k.toUpperCase()}`] = v
  const started = performance.now()
  const child = spawn(process.execPath, [DIST], { env: fullEnv })
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stdout += d.toString()))
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return {
    status,
    stdout,
    outputs: parseOutputFile(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
    errors: stdout.split('\n').filter((l) => l.startsWith('::error::')),
    seconds: (performance.now() - started) / 1000,
  }
}

/** GITHUB_OUTPUT uses `name<<DELIMITER\nvalue\nDELIMITER` blocks. */
function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of text.matchAll(/^([\w-]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) out[m[1]!] = m[3]!
  return out
}
