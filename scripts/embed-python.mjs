// Embeds the kserve runtime's Python server into a TypeScript module, so the ncc bundle
// (dist/index.js, JavaScript only) carries it into every build context. `npm run build` runs
// this first; test/unit/image/context.test.ts fails when the module and the .py file disagree.
import { readFileSync, writeFileSync } from 'node:fs'

export const SOURCE = 'src/image/kserve/server.py'
export const TARGET = 'src/image/kserve/server-py.ts'

export function render(python) {
  return (
    `// Generated from ${SOURCE.split('/').pop()} by scripts/embed-python.mjs (npm run embed): do not edit.\n` +
    `export const SERVER_PY = ${JSON.stringify(python)}\n`
  )
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(TARGET, render(readFileSync(SOURCE, 'utf8')))
}
