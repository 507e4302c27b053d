// What one field manager set on an object, read back from metadata.managedFields (FieldsV1). A
// rollback restores only what the action itself applied: re-applying a whole object would make
// the action the owner of fields webhooks and controllers set (Knative's creator annotation is
// immutable: a later apply that no longer carries it is refused).
import { isPlainObject } from '../util/yaml.js'
import type { KubeObject } from './readiness.js'

type Fields = Record<string, unknown>

interface ManagedFieldsEntry {
  manager?: string
  operation?: string
  fieldsType?: string
  fieldsV1?: Fields
}

/** The FieldsV1 set `manager` owns through server-side apply, or undefined when it owns none. */
export function appliedFields(obj: KubeObject, manager: string): Fields | undefined {
  const entries = (obj.metadata?.['managedFields'] ?? []) as ManagedFieldsEntry[]
  const entry = entries.find((e) => e.manager === manager && e.operation === 'Apply' && e.fieldsType === 'FieldsV1')
  return entry?.fieldsV1
}

/** The part of `value` that `fields` names (FieldsV1: f: fields, k: list keys, v: set values, i: indexes). */
export function projectFields(value: unknown, fields: Fields): unknown {
  if (Array.isArray(value)) {
    const out: unknown[] = []
    for (const [key, sub] of Object.entries(fields)) {
      if (key.startsWith('k:')) {
        const match = JSON.parse(key.slice(2)) as Fields
        const item = value.find((i) => isPlainObject(i) && Object.entries(match).every(([k, v]) => same(i[k], v)))
        if (item !== undefined) out.push(projectChild(item, sub))
      } else if (key.startsWith('v:')) {
        out.push(JSON.parse(key.slice(2)))
      } else if (key.startsWith('i:')) {
        const item = value[Number(key.slice(2))]
        if (item !== undefined) out.push(projectChild(item, sub))
      }
    }
    return out
  }
  if (!isPlainObject(value)) return value
  const out: Fields = {}
  for (const [key, sub] of Object.entries(fields)) {
    if (!key.startsWith('f:')) continue
    const name = key.slice(2)
    if (name in value) out[name] = projectChild(value[name], sub)
  }
  return out
}

/** A leaf (no sub-fields, or only ".") is owned whole: an atomic list, a scalar, a map set as one. */
function projectChild(value: unknown, sub: unknown): unknown {
  const children = isPlainObject(sub) ? Object.keys(sub).filter((k) => k !== '.') : []
  return children.length === 0 ? value : projectFields(value, sub as Fields)
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}
