// The command-line edge: the same pipeline outside GitHub Actions, for local debugging and other
// CI systems. Every action input is a flag of the same name (--model-uri …) or an environment
// variable MLFLOW_K8S_DEPLOY_<NAME> (MLFLOW_K8S_DEPLOY_MODEL_URI); flags win. Outputs are printed
// as name=value lines (or one JSON object with --json); the exit code is 0 on success, 1 otherwise.
import { readFileSync } from 'node:fs'
import * as core from '@actions/core'
import { load } from 'js-yaml'
import { runAction } from './run-action.js'
import type { Logger } from './util/logger.js'

const USAGE = `usage: mlflow-k8s-deploy --model-uri models:/<name>/<version> [--<input> <value> ...] [--json]
Inputs are those of action.yml, as flags or MLFLOW_K8S_DEPLOY_<INPUT> variables.`

export interface CliResult {
  readonly code: number
  readonly outputs: Record<string, string>
}

/** Parses `--name value` / `--name=value` pairs; unknown names are an error. */
export function parseFlags(
  argv: readonly string[],
  known: ReadonlySet<string>,
): { values: Record<string, string>; json: boolean } {
  const values: Record<string, string> = {}
  let json = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--json') {
      json = true
      continue
    }
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg)
    if (!m) throw new Error(`unexpected argument "${arg}"\n${USAGE}`)
    const name = m[1]!
    if (!known.has(name)) throw new Error(`unknown flag --${name}; the flags are the inputs of action.yml\n${USAGE}`)
    const value = m[2] ?? argv[++i]
    if (value === undefined) throw new Error(`--${name} needs a value`)
    values[name] = value
  }
  return { values, json }
}

export const envName = (input: string) => `MLFLOW_K8S_DEPLOY_${input.toUpperCase().replace(/-/g, '_')}`

export async function cli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  inputNames: readonly string[],
  print: (line: string) => void = (l) => process.stdout.write(l + '\n'),
): Promise<CliResult> {
  const secrets = new Set<string>()
  const redact = (text: string) => [...secrets].reduce((t, s) => t.split(s).join('***'), text)
  const out = (line: string) => print(redact(line))
  let flags: ReturnType<typeof parseFlags>
  try {
    flags = parseFlags(argv, new Set(inputNames))
  } catch (err) {
    out(`error: ${(err as Error).message}`)
    return { code: 2, outputs: {} }
  }
  const log: Logger = {
    info: (m) => out(m),
    warning: (m) => out(`warning: ${m}`),
    debug: (m) => (env['MLFLOW_K8S_DEPLOY_DEBUG'] ? out(`debug: ${m}`) : undefined),
    group: async (title, fn) => {
      out(`\n== ${title}`)
      return fn()
    },
  }
  const outputs: Record<string, string> = {}
  let failed: string | undefined
  await runAction({
    getInput: (name) => flags.values[name] ?? env[envName(name)] ?? '',
    env,
    mask: (secret) => void secrets.add(secret),
    log,
    setOutput: (name, value) => void (outputs[name] = value),
    setFailed: (message) => void (failed = message),
    getIdToken: (audience) => core.getIDToken(audience),
  })
  if (failed) {
    out('')
    out(`error: ${failed}`)
  }
  if (flags.json) out(JSON.stringify(outputs, null, 2))
  else {
    out('')
    for (const [k, v] of Object.entries(outputs)) if (k !== 'manifest') out(`${k}=${v}`)
    if (outputs['manifest']) {
      out('')
      out(outputs['manifest'])
    }
  }
  return { code: failed ? 1 : 0, outputs }
}

/** The input names, read from the action.yml shipped next to the bundle (dist/cli/ → repo root). */
export function actionInputNames(actionYml: string): string[] {
  const action = load(readFileSync(actionYml, 'utf8')) as { inputs: Record<string, unknown> }
  return Object.keys(action.inputs)
}
