// Renders the inputs and outputs tables of README.md from action.yml (between the
// <!-- inputs --> / <!-- outputs --> markers). `npm run docs` rewrites README.md;
// test/unit/readme.test.ts fails when README.md and action.yml disagree.
import { readFileSync, writeFileSync } from 'node:fs'
import { load } from 'js-yaml'

const cell = (text) =>
  String(text ?? '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\|/g, '\\|')

export function renderTables(actionYml) {
  const action = load(actionYml)
  const inputs = Object.entries(action.inputs).map(
    ([name, i]) =>
      `| \`${name}\` | ${i.required ? 'yes' : ''} | ${i.default !== undefined ? `\`${cell(i.default)}\`` : ''} | ${cell(i.description)} |`,
  )
  const outputs = Object.entries(action.outputs).map(([name, o]) => `| \`${name}\` | ${cell(o.description)} |`)
  return {
    inputs: ['| Input | Required | Default | Description |', '|---|---|---|---|', ...inputs].join('\n'),
    outputs: ['| Output | Description |', '|---|---|', ...outputs].join('\n'),
  }
}

export function replaceSection(readme, marker, body) {
  const re = new RegExp(`(<!-- ${marker}:start -->)[\\s\\S]*?(<!-- ${marker}:end -->)`)
  if (!re.test(readme)) throw new Error(`README.md has no <!-- ${marker}:start/end --> markers`)
  return readme.replace(re, `$1\n${body}\n$2`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const tables = renderTables(readFileSync('action.yml', 'utf8'))
  let readme = readFileSync('README.md', 'utf8')
  readme = replaceSection(readme, 'inputs', tables.inputs)
  readme = replaceSection(readme, 'outputs', tables.outputs)
  writeFileSync('README.md', readme)
}
