// The process seam for docker, buildx and credential helpers: tests hand in a fake, the action
// uses @actions/exec.
import { getExecOutput } from '@actions/exec'

export interface ExecOptions {
  /** Added to (not replacing) the action's own environment. */
  readonly env?: Readonly<Record<string, string>>
  /** Written to the process's stdin. */
  readonly input?: string
  readonly cwd?: string
  /** Each output line as it comes (stdout and stderr), e.g. to stream a build log to debug. */
  readonly onLine?: (line: string) => void
}

export interface ExecResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to completion; never throws for a non-zero exit (127 when it cannot start). */
export type Exec = (command: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>

export const actionsExec: Exec = async (command, args, options = {}) => {
  const lines = (chunk: string) => {
    if (options.onLine) for (const l of chunk.split('\n')) if (l) options.onLine(l)
  }
  try {
    return await getExecOutput(command, [...args], {
      ignoreReturnCode: true,
      silent: true,
      cwd: options.cwd,
      env: options.env ? ({ ...process.env, ...options.env } as Record<string, string>) : undefined,
      input: options.input !== undefined ? Buffer.from(options.input) : undefined,
      listeners: options.onLine ? { stdout: (b) => lines(b.toString()), stderr: (b) => lines(b.toString()) } : {},
    })
  } catch (err) {
    // @actions/exec throws when the executable is not on PATH.
    return { exitCode: 127, stdout: '', stderr: err instanceof Error ? err.message : String(err) }
  }
}
