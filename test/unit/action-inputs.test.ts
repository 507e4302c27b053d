import { readFileSync } from 'node:fs'
import { load } from 'js-yaml'
// @ts-expect-error: a plain .mjs script without types
import { SOURCE, TARGET, readInputs, render } from '../../scripts/gen-action-metadata.mjs'
import { ACTION_INPUTS } from '../../src/generated/action-inputs.js'
import { DEFAULT_BASE_IMAGES } from '../../src/inputs.js'

const read = readInputs as (actionYml: string) => Record<string, { default?: string; env?: string }>
const inputs = (body: string) => read(`inputs:\n${body}`)

test('src/generated/action-inputs.ts is the current action.yml (run `npm run metadata` after editing it)', async () => {
  const actionYml = readFileSync(SOURCE as string, 'utf8')
  expect(ACTION_INPUTS).toEqual(read(actionYml))
  expect(readFileSync(TARGET as string, 'utf8')).toBe(await (render as (yml: string) => Promise<string>)(actionYml))
})

describe('what the generator takes from action.yml', () => {
  test.each<[string, string, object]>([
    ['a literal default', '  target:\n    description: x\n    default: knative', { target: { default: 'knative' } }],
    ['a YAML boolean default, as the runner passes it', '  wait:\n    default: true', { wait: { default: 'true' } }],
    ['no default', '  name:\n    description: Service name.', { name: {} }],
    ['an empty default is none', "  tag:\n    default: ''", { tag: {} }],
    [
      'an expression default is left to the runner',
      "  github-token:\n    default: '${{ github.token }}'",
      {
        'github-token': {},
      },
    ],
    [
      'the env fallback its description names',
      '  tracking-uri:\n    description: MLflow URL. Falls back to MLFLOW_TRACKING_URI.',
      { 'tracking-uri': { env: 'MLFLOW_TRACKING_URI' } },
    ],
  ])('%s', (_case, yml, expected) => expect(inputs(yml)).toEqual(expected))

  test.each<[string, string, RegExp]>([
    [
      'a default and a fallback (the runner would always pass the default)',
      '  a:\n    description: Falls back to A_VAR.\n    default: x',
      /"a" has both a default and a fallback to A_VAR/,
    ],
    ['two fallbacks', '  a:\n    description: Falls back to A_VAR. Falls back to B_VAR.', /"a" names 2 fallbacks/],
    ['a name that is not lower-case kebab-case', '  Model_URI:\n    description: x', /"Model_URI": use lower-case/],
  ])('rejects %s', (_case, yml, message) => expect(() => inputs(yml)).toThrow(message))
})

// base-image's default depends on runtime, so action.yml can only state it in words.
test("base-image's description names each runtime's default base", () => {
  const { inputs } = load(readFileSync(SOURCE as string, 'utf8')) as { inputs: Record<string, { description: string }> }
  for (const [runtime, base] of Object.entries(DEFAULT_BASE_IMAGES)) {
    expect(inputs['base-image']?.description).toContain(`${base} for ${runtime}`)
  }
})
