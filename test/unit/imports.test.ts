// The direction of every import in src/, read with the TypeScript compiler (type-only imports and
// re-exports count: they couple modules as much as value imports do).
//
// The rule. Each file belongs to one layer, listed from the top:
//   entry     index.ts, main.ts, cli.ts, run-action.ts, services.ts: the edges and the wiring
//   pipeline  pipeline/: the stages, mapping the parsed inputs onto the domain modules' options
//   run       inputs.ts (with generated/, action.yml's inputs), github-context.ts, report/: what a
//             run is given and what it hands back
//             (the entry reads and publishes them; the stages read the inputs and fill the report)
//   domain    mlflow/, image/, k8s/, inference/, github/: one module per outside system
//   contract  contract/: what two domain modules must agree on (the serving contract, MLflow's
//             model signature)
//   util      util/, version.ts
// A file imports files of its own layer or of layers below it, never above. A domain module
// imports only itself, contract/ and util/: never another domain module. contract/ and util/
// import nothing above them either. @actions/core is for the edges only (main.ts, cli.ts).
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'

const SRC = resolve(import.meta.dirname, '../../src')

const LAYERS: readonly (readonly [layer: string, members: readonly string[]])[] = [
  ['entry', ['index.ts', 'main.ts', 'cli.ts', 'run-action.ts', 'services.ts']],
  ['pipeline', ['pipeline/']],
  ['run', ['inputs.ts', 'generated/', 'github-context.ts', 'report/']],
  ['domain', ['mlflow/', 'image/', 'k8s/', 'inference/', 'github/']],
  ['contract', ['contract/']],
  ['util', ['util/', 'version.ts']],
]

/** Packages only the edges may import. */
const EDGE_PACKAGES: Readonly<Record<string, readonly string[]>> = { '@actions/core': ['main.ts', 'cli.ts'] }

/**
 * Imports that break the rule today, each with the reason and the change that removes it. The
 * test fails when one is no longer there: take it off this list then.
 */
const KNOWN: readonly (readonly [from: string, to: string, why: string])[] = []

interface Placed {
  readonly layer: string
  readonly rank: number
  /** The layer member the file belongs to: a domain module's directory, or the file itself. */
  readonly member: string
}

function place(file: string): Placed | undefined {
  for (const [rank, [layer, members]] of LAYERS.entries()) {
    const member = members.find((m) => (m.endsWith('/') ? file.startsWith(m) : file === m))
    if (member) return { layer, rank, member }
  }
  return undefined
}

/** Why `from` may not import `to`, or undefined when it may. */
function violation(from: string, to: string): string | undefined {
  const a = place(from)
  const b = place(to)
  if (!a || !b) return undefined
  if (b.rank < a.rank) return `${a.layer} imports ${b.layer}, a layer above it`
  if (a.layer === 'domain' && b.layer === 'domain' && a.member !== b.member) {
    return `domain module ${a.member} imports domain module ${b.member}: share through contract/ instead`
  }
  return undefined
}

function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(path)
    return e.name.endsWith('.ts') ? [relative(SRC, path)] : []
  })
}

/** Every module specifier a file names: imports, `import type`, re-exports, dynamic imports. */
function specifiers(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(SRC, file), 'utf8'), true, true)
  return info.importedFiles.map((f) => f.fileName)
}

/** A relative specifier as a path under src/ (`./x.js` names the file `x.ts`). */
function target(from: string, specifier: string): string {
  return relative(SRC, resolve(SRC, dirname(from), specifier)).replace(/\.js$/, '.ts')
}

const files = sourceFiles()
const edges = files.flatMap((from) =>
  specifiers(from).map((specifier) => ({
    from,
    specifier,
    to: specifier.startsWith('.') ? target(from, specifier) : undefined,
  })),
)
const known = (from: string, to: string) => KNOWN.some(([f, t]) => f === from && t === to)

test('every source file has a layer', () => {
  expect(files.length).toBeGreaterThan(50)
  expect(files.filter((f) => !place(f))).toEqual([])
})

test('imports point down the layers; domain modules share only contract/ and util/', () => {
  const found = edges.flatMap(({ from, to }) => {
    const why = to === undefined || known(from, to) ? undefined : violation(from, to)
    return why ? [`${from} → ${to}: ${why}`] : []
  })
  expect(found).toEqual([])
})

test('the known exceptions are still there (remove them from KNOWN once fixed)', () => {
  const gone = KNOWN.filter(([from, to]) => !edges.some((e) => e.from === from && e.to === to)).map(
    ([from, to]) => `${from} → ${to}`,
  )
  expect(gone).toEqual([])
})

test('@actions/core only at the edges', () => {
  const found = edges
    .filter(({ from, specifier }) => EDGE_PACKAGES[specifier] && !EDGE_PACKAGES[specifier]!.includes(from))
    .map(({ from, specifier }) => `${from} → ${specifier}`)
  expect(found).toEqual([])
})

// The rule itself, from a table: a check that allows everything would pass the tests above.
test.each<[string, string, boolean]>([
  ['pipeline/apply.ts', 'k8s/index.ts', true],
  ['pipeline/apply.ts', 'inputs.ts', true],
  ['inputs.ts', 'k8s/naming.ts', true],
  ['image/context.ts', 'contract/serving.ts', true],
  ['k8s/index.ts', 'k8s/kube.ts', true],
  ['report/summary.ts', 'util/duration.ts', true],
  ['image/context.ts', 'k8s/render.ts', false],
  ['k8s/index.ts', 'inference/smoke.ts', false],
  ['k8s/render.ts', 'inputs.ts', false],
  ['util/duration.ts', 'util/errors.ts', true],
  ['util/http.ts', 'mlflow/errors.ts', false],
  ['contract/serving.ts', 'k8s/render.ts', false],
  ['pipeline/run.ts', 'run-action.ts', false],
  ['inputs.ts', 'pipeline/context.ts', false],
])('%s → %s allowed: %s', (from, to, allowed) => {
  expect(violation(from, to) === undefined).toBe(allowed)
})
