// Embeds the serving images' Python modules (src/image/python/*.py) into a TypeScript module, so
// the ncc bundle (dist/index.js, JavaScript only) carries them into every build context.
// `npm run build` runs this first; test/unit/image/context.test.ts fails when they disagree.
import { readFileSync, writeFileSync } from 'node:fs'
import * as prettier from 'prettier'

/** Each embedded file and the name of its constant. */
export const SOURCES = {
  SERVER_PY: 'src/image/python/server.py',
  MLSERVER_RUNTIME_PY: 'src/image/python/mlserver_runtime.py',
}
export const TARGET = 'src/image/python/embedded.ts'

/** The module's text for the files' contents, formatted as `npm run lint` wants it. */
export async function render(contents) {
  const text =
    '// Generated from src/image/python/*.py by scripts/embed-python.mjs (npm run embed): do not edit.\n' +
    Object.entries(contents)
      .map(([name, python]) => `export const ${name} = ${JSON.stringify(python)}\n`)
      .join('')
  return prettier.format(text, { ...(await prettier.resolveConfig(TARGET)), filepath: TARGET })
}

export function readSources() {
  return Object.fromEntries(Object.entries(SOURCES).map(([name, path]) => [name, readFileSync(path, 'utf8')]))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(TARGET, await render(readSources()))
}
