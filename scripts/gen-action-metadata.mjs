// Generates src/generated/action-inputs.ts from action.yml: each input's name, its literal
// default and the environment variable it falls back to, so action.yml is the one place they are
// written and src/inputs.ts reads them from a typed constant (a misspelt input name does not
// compile). `npm run build` runs this; test/unit/action-inputs.test.ts fails when they disagree.
//
// The env fallback is the variable named in the input's description ("Falls back to NAME."):
// action.yml has no field for it (the runner rejects keys it does not know), and the README
// table, made from the same description, then says exactly what the code does.
import { readFileSync, writeFileSync } from 'node:fs'
import { load } from 'js-yaml'
import * as prettier from 'prettier'

export const SOURCE = 'action.yml'
export const TARGET = 'src/generated/action-inputs.ts'

const FALLBACK = /Falls back to ([A-Z][A-Z0-9_]*)/g

/** The inputs of action.yml as { name: { default?, env? } }; throws on metadata the parser cannot honour. */
export function readInputs(actionYml) {
  const { inputs } = load(actionYml)
  const out = {}
  for (const [name, input] of Object.entries(inputs ?? {})) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`${SOURCE}: input "${name}": use lower-case kebab-case`)
    const entry = {}
    // The runner evaluates a `${{ … }}` default itself; outside it (the CLI) the input is unset.
    const value = input?.default === undefined || input.default === null ? '' : String(input.default)
    if (value && !value.includes('${{')) entry.default = value
    const envs = [...String(input?.description ?? '').matchAll(FALLBACK)].map((m) => m[1])
    if (envs.length > 1) throw new Error(`${SOURCE}: input "${name}" names ${envs.length} fallbacks; use one`)
    if (envs.length === 1) entry.env = envs[0]
    // The runner passes a default as INPUT_<NAME> whenever the workflow omits the input, so an
    // env fallback behind a default would be read by the CLI but never on GitHub.
    if (value && entry.env) {
      throw new Error(`${SOURCE}: input "${name}" has both a default and a fallback to ${entry.env}; drop one`)
    }
    out[name] = entry
  }
  return out
}

/** The module's text for action.yml's text, formatted as `npm run lint` wants it. */
export async function render(actionYml) {
  const entries = Object.entries(readInputs(actionYml))
    .map(([name, entry]) => `  ${JSON.stringify(name)}: ${JSON.stringify(entry)},`)
    .join('\n')
  const text = `// Generated from action.yml by scripts/gen-action-metadata.mjs (npm run metadata): do not edit.

/** What the parser needs from one input of action.yml. */
export interface ActionInput {
  /** The literal default: the runner passes it as INPUT_<NAME>; the parser applies it everywhere else. */
  readonly default?: string
  /** The environment variable read when the input is empty ("Falls back to …" in its description). */
  readonly env?: string
}

/** Every input of action.yml, in its order. */
export const ACTION_INPUTS = {
${entries}
} as const satisfies Readonly<Record<string, ActionInput>>

export type InputName = keyof typeof ACTION_INPUTS

/** The inputs with a default: never empty when read. */
export type DefaultedInput = {
  [N in InputName]: (typeof ACTION_INPUTS)[N] extends { readonly default: string } ? N : never
}[InputName]
`
  return prettier.format(text, { ...(await prettier.resolveConfig(TARGET)), filepath: TARGET })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(TARGET, await render(readFileSync(SOURCE, 'utf8')))
}
