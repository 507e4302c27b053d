// Names say one thing: no two modules of src/ export a function, class, constant, type or
// interface of the same name (a reader, or an editor's auto-import, can never take one for the other).
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

const SRC = resolve(import.meta.dirname, '../../src')
const EXPORT =
  /^export (?:declare )?(?:async )?(?:abstract )?(?:function\*?|class|const|let|interface|type|enum)\s+(\w+)/gm

function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

test('every exported name in src/ is declared in one module only', () => {
  const where = new Map<string, string[]>()
  for (const file of sourceFiles()) {
    for (const m of readFileSync(file, 'utf8').matchAll(EXPORT)) {
      where.set(m[1]!, [...(where.get(m[1]!) ?? []), relative(SRC, file)])
    }
  }
  expect(where.size).toBeGreaterThan(200)
  const twice = [...where]
    .filter(([, files]) => files.length > 1)
    .map(([name, files]) => `${name}: ${files.join(', ')}`)
  expect(twice).toEqual([])
})
