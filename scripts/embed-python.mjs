// Embeds the kserve runtime's Python server into a TypeScript module, so the ncc bundle
// (dist/index.js, JavaScript only) carries it into every build context. `npm run build` runs
// this first; test/unit/image/context.test.ts fails when the module and the .py file disagree.
import { readFileSync, writeFileSync } from 'node:fs'
import * as prettier from 'prettier'

export const SOURCE = 'src/image/kserve/server.py'
export const TARGET = 'src/image/kserve/server-py.ts'

/** The module's text, formatted as `npm run lint` wants it. */
export async function render(python) {
  const text =
    `// Generated from ${SOURCE.split('/').pop()} by scripts/embed-python.mjs (npm run embed): do not edit.\n` +
    `export const SERVER_PY = ${JSON.stringify(python)}\n`
  return prettier.format(text, { ...(await prettier.resolveConfig(TARGET)), filepath: TARGET })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(TARGET, await render(readFileSync(SOURCE, 'utf8')))
}
