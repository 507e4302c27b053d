// The command-line edge: the same pipeline outside GitHub Actions, for local debugging and other
// CI systems. Every action input is a flag of the same name (--model-uri …) or an environment
// variable MLFLOW_K8S_DEPLOY_<NAME> (MLFLOW_K8S_DEPLOY_MODEL_URI); flags win. Outputs are printed
// as name=value lines (or one JSON object with --json) on standard output; the stage log goes to
// standard error, so `… --json | jq .url` works. Exit code: 0 on success, 1 on failure, 2 on usage.
import { readFileSync } from 'node:fs'
import * as core from '@actions/core'
import { load } from 'js-yaml'
import { runAction } from './run-action.js'
import type { Logger } from './util/logger.js'

const USAGE = `usage: mlflow-k8s-deploy --model-uri models:/<name>/<version> [--<input> <value> ...] [--json]
       mlflow-k8s-deploy --help | --version`

/** Variables read besides the inputs' own (MLflow's fallbacks are named in each input's help). */
const OTHER_ENV: readonly (readonly [string, string])[] = [
  ['KUBECONFIG', 'the cluster when `kubeconfig` is not given (else in-cluster config)'],
  ['DOCKER_HOST, DOCKER_CONTEXT, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH', 'the Docker engine buildx talks to'],
  ['DOCKER_CONFIG', 'registry credentials (config.json auths, credHelpers, credsStore)'],
  ['HTTP_PROXY, HTTPS_PROXY, NO_PROXY', 'proxies for MLflow, registry and V2 requests'],
  ['ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN', "GitHub's OIDC token (oidc-github-token)"],
  ['MLFLOW_K8S_DEPLOY_DEBUG', 'any value: print debug lines'],
]

/** What the CLI needs from action.yml: the inputs, in order, with their help. */
export interface InputHelp {
  readonly name: string
  readonly description: string
  readonly default?: string
  readonly required: boolean
}

export interface CliResult {
  readonly code: number
  readonly outputs: Record<string, string>
}

/** Parses `--name value` / `--name=value` pairs; unknown names are an error. */
export function parseFlags(
  argv: readonly string[],
  known: ReadonlySet<string>,
): { values: Record<string, string>; json: boolean; help: boolean; version: boolean } {
  const values: Record<string, string> = {}
  let json = false
  let help = false
  let version = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--json') {
      json = true
      continue
    }
    if (arg === '--help' || arg === '-h') {
      help = true
      continue
    }
    if (arg === '--version' || arg === '-V') {
      version = true
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
  return { values, json, help, version }
}

/** `--help`: usage, every input with its description, default and variable, then other variables. */
export function renderHelp(inputs: readonly InputHelp[]): string {
  const lines = [
    USAGE,
    '',
    "Deploys an MLflow model to Knative or KServe as a verified V2 endpoint: the GitHub Action's",
    'pipeline from a terminal or another CI system. Every input of action.yml is a flag or a variable;',
    'flags win. Outputs are printed as name=value lines, or one JSON object with --json (the log goes',
    'to standard error).',
    '',
    'Inputs:',
  ]
  for (const input of inputs) {
    const facts = [
      input.required ? 'required' : input.default ? `default: ${input.default}` : undefined,
      envName(input.name),
    ]
    lines.push(`  --${input.name} (${facts.filter(Boolean).join('; ')})`)
    for (const line of wrap(input.description.replace(/\s+/g, ' ').trim(), 92)) lines.push(`      ${line}`)
  }
  lines.push('', 'Other environment variables:')
  for (const [name, what] of OTHER_ENV) lines.push(`  ${name}`, `      ${what}`)
  lines.push('', 'Exit status: 0 deployed (or rendered, deleted, cleaned up), 1 failed, 2 usage error.')
  return lines.join('\n')
}

function wrap(text: string, width: number): string[] {
  const out: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  if (line) out.push(line)
  return out
}

export const envName = (input: string) => `MLFLOW_K8S_DEPLOY_${input.toUpperCase().replace(/-/g, '_')}`

/** Where the CLI writes: results to standard output, the log and errors to standard error. */
export interface CliStreams {
  out(line: string): void
  err(line: string): void
}

const STD_STREAMS: CliStreams = {
  out: (l) => void process.stdout.write(l + '\n'),
  err: (l) => void process.stderr.write(l + '\n'),
}

export async function cli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  action: { readonly inputs: readonly InputHelp[]; readonly version: string },
  streams: CliStreams = STD_STREAMS,
): Promise<CliResult> {
  const secrets = new Set<string>()
  const redact = (text: string) => [...secrets].reduce((t, s) => t.split(s).join('***'), text)
  const out = (line: string) => streams.out(redact(line))
  const say = (line: string) => streams.err(redact(line))
  let flags: ReturnType<typeof parseFlags>
  try {
    flags = parseFlags(argv, new Set(action.inputs.map((i) => i.name)))
  } catch (err) {
    say(`error: ${(err as Error).message}`)
    return { code: 2, outputs: {} }
  }
  if (flags.help) {
    out(renderHelp(action.inputs))
    return { code: 0, outputs: {} }
  }
  if (flags.version) {
    out(`mlflow-k8s-deploy ${action.version}`)
    return { code: 0, outputs: {} }
  }
  const log: Logger = {
    info: (m) => say(m),
    warning: (m) => say(`warning: ${m}`),
    debug: (m) => (env['MLFLOW_K8S_DEPLOY_DEBUG'] ? say(`debug: ${m}`) : undefined),
    group: async (title, fn) => {
      say(`\n== ${title}`)
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
    say('')
    say(`error: ${failed}`)
  }
  if (flags.json) out(JSON.stringify(outputs, null, 2))
  else {
    for (const [k, v] of Object.entries(outputs)) if (k !== 'manifest') out(`${k}=${v}`)
    if (outputs['manifest']) {
      out('')
      out(outputs['manifest'])
    }
  }
  return { code: failed ? 1 : 0, outputs }
}

interface ActionYmlInput {
  readonly description?: string
  readonly required?: boolean
  readonly default?: string | number | boolean
}

/** The inputs with their help, read from the action.yml shipped next to the bundle's folder. */
export function readActionInputs(actionYml: string): InputHelp[] {
  const action = load(readFileSync(actionYml, 'utf8')) as { inputs: Record<string, ActionYmlInput> }
  return Object.entries(action.inputs).map(([name, i]) => ({
    name,
    description: i.description ?? '',
    required: i.required === true,
    ...(i.default !== undefined && String(i.default) !== '' ? { default: String(i.default) } : {}),
  }))
}

/** The version in the package.json beside action.yml. */
export function readVersion(packageJson: string): string {
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version
}
