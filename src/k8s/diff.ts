// What a deploy would change in the live object, for `action: plan`: a pure comparison of the live
// object with the server's dry-run answer, over the fields the action sets (the paths of the
// manifest it applies). Status, managed fields and what other managers own are not looked at.
// Lists of named items (containers, env, ports) are compared by name, so an added variable reads
// "env +FOO" rather than a shifted index.
import { isPlainObject } from '../util/yaml.js'
import type { KubeObject } from './readiness.js'

export interface FieldChange {
  /** e.g. spec.template.spec.containers[kserve-container].env[FOO].value */
  readonly path: string
  readonly before: unknown
  readonly after: unknown
}

export interface ObjectDiff {
  readonly created: boolean
  readonly changes: readonly FieldChange[]
  /** Named list items that the apply adds or removes: "env +FOO", "env -BAR". */
  readonly items: readonly string[]
  /** "unchanged", or the traffic block before → after. */
  readonly traffic: string
}

const IGNORED_TOP = new Set(['status', 'apiVersion', 'kind'])
const IGNORED_METADATA = new Set(['managedFields', 'resourceVersion', 'generation', 'uid', 'creationTimestamp'])

/** Compares `live` with `result` (the dry-run answer) at the leaf paths of `desired`. */
export function diffObject(live: KubeObject | undefined, desired: KubeObject, result: KubeObject): ObjectDiff {
  const traffic = trafficChange(live, result)
  if (!live) return { created: true, changes: [], items: [], traffic }
  const changes: FieldChange[] = []
  const items: string[] = []
  walk(desired, live, result, [], changes, items)
  return { created: false, changes, items, traffic }
}

function walk(
  desired: unknown,
  live: unknown,
  result: unknown,
  path: readonly string[],
  changes: FieldChange[],
  items: string[],
): void {
  if (isPlainObject(desired)) {
    for (const [key, value] of Object.entries(desired)) {
      if (path.length === 0 && IGNORED_TOP.has(key)) continue
      if (path.length === 1 && path[0] === 'metadata' && IGNORED_METADATA.has(key)) continue
      // Traffic is reported on its own line, as the controller resolves it.
      if (path.length === 1 && path[0] === 'spec' && key === 'traffic') continue
      if (path.join('.') === 'spec.predictor' && key === 'canaryTrafficPercent') continue
      walk(value, field(live, key), field(result, key), [...path, key], changes, items)
    }
    return
  }
  if (Array.isArray(desired) && desired.every(isNamed)) {
    const last = path[path.length - 1] ?? ''
    const liveNames = names(live)
    const resultNames = names(result)
    for (const n of resultNames) if (!liveNames.includes(n)) items.push(`${last} +${n}`)
    for (const n of liveNames) if (!resultNames.includes(n)) items.push(`${last} -${n}`)
    for (const item of desired) {
      const name = (item as { name: string }).name
      if (!liveNames.includes(name)) continue
      walk(item, byName(live, name), byName(result, name), [...path.slice(0, -1), `${last}[${name}]`], changes, items)
    }
    return
  }
  if (canonical(live) !== canonical(result)) changes.push({ path: path.join('.'), before: live, after: result })
}

/** Knative's spec.traffic or KServe's canaryTrafficPercent, before and after. */
function trafficChange(live: KubeObject | undefined, result: KubeObject): string {
  const of = (o: KubeObject | undefined) => {
    const spec = o?.spec
    if (!spec) return undefined
    if (Array.isArray(spec['traffic'])) return spec['traffic']
    const predictor = spec['predictor']
    return isPlainObject(predictor) ? predictor['canaryTrafficPercent'] : undefined
  }
  const before = of(live)
  const after = of(result)
  if (canonical(before) === canonical(after)) return 'unchanged'
  return `${formatTraffic(before)} → ${formatTraffic(after)}`
}

function formatTraffic(t: unknown): string {
  if (t === undefined) return '100% to the latest revision'
  if (typeof t === 'number') return `canary ${t}%`
  if (!Array.isArray(t)) return JSON.stringify(t)
  return t
    .map((e: Record<string, unknown>) => {
      const who = e['revisionName'] ?? (e['latestRevision'] ? 'latest' : '?')
      return `${String(who)} ${Number(e['percent'] ?? 0)}%${e['tag'] ? ` (tag ${String(e['tag'])})` : ''}`
    })
    .join(', ')
}

/** The diff as lines for the log, the summary and the `plan` output. */
export function formatDiff(what: string, diff: ObjectDiff): string[] {
  if (diff.created) return [`${what}: does not exist yet; the deploy creates it`, `traffic: ${diff.traffic}`]
  const lines = [`${what}: ${summarizeDiff(diff)}`]
  for (const c of diff.changes) lines.push(`  ${c.path}: ${show(c.before)} → ${show(c.after)}`)
  for (const i of diff.items) lines.push(`  ${i}`)
  lines.push(`traffic: ${diff.traffic}`)
  return lines
}

/** One line: "container image v3 → v4, env +FOO" or "no change". */
export function summarizeDiff(diff: ObjectDiff): string {
  if (diff.created) return 'new'
  const parts = diff.changes.map((c) => {
    const leaf = c.path.replace(/^.*\.containers\[[^\]]+\]\./, 'container ')
    return c.path.endsWith('.image') ? `${leaf} ${show(c.before)} → ${show(c.after)}` : leaf
  })
  parts.push(...diff.items)
  return parts.length ? parts.join(', ') : 'no change'
}

function show(v: unknown): string {
  if (v === undefined) return '(unset)'
  return typeof v === 'string' ? v : JSON.stringify(v)
}

const isNamed = (v: unknown) => isPlainObject(v) && typeof v['name'] === 'string'
const field = (o: unknown, key: string) => (isPlainObject(o) ? o[key] : undefined)
const names = (list: unknown): string[] =>
  Array.isArray(list) ? list.filter(isNamed).map((i) => (i as { name: string }).name) : []
const byName = (list: unknown, name: string) =>
  Array.isArray(list) ? list.find((i) => isNamed(i) && (i as { name: string }).name === name) : undefined

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) =>
    isPlainObject(value) ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b))) : value,
  )
}
