import { readFileSync } from 'node:fs'
import { join } from 'node:path'
// @ts-expect-error: a plain .mjs script shared with `npm run docs`, no types
import { renderTables } from '../../scripts/docs.mjs'

const root = join(import.meta.dirname, '../..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const tables = renderTables(readFileSync(join(root, 'action.yml'), 'utf8')) as { inputs: string; outputs: string }

const section = (marker: string) =>
  readme.match(new RegExp(`<!-- ${marker}:start -->\\n([\\s\\S]*?)\\n<!-- ${marker}:end -->`))?.[1]

test.each(['inputs', 'outputs'] as const)('README %s table matches action.yml (run `npm run docs`)', (marker) => {
  expect(section(marker)).toBe(tables[marker])
})

test('README starts with the demo and the test command', () => {
  const firstBlock = readme.match(/```sh\n([\s\S]*?)```/)?.[1] ?? ''
  expect(firstBlock).toContain('npm run demo')
  expect(firstBlock).toContain('npm test')
})
