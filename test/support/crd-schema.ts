// The upstream CRDs in ../shared/crds (the rig applies the same files), read as structural
// schemas: what a rendered object holds is checked against the fields and types they declare,
// as the apiserver's strict field validation does, without an apiserver.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadAll } from 'js-yaml'

const SHARED = process.env['RIG_SHARED_DIR'] ?? join(import.meta.dirname, '../../../shared')

interface Schema {
  type?: string
  properties?: Record<string, Schema>
  additionalProperties?: Schema | boolean
  items?: Schema
  'x-kubernetes-preserve-unknown-fields'?: boolean
  'x-kubernetes-int-or-string'?: boolean
  'x-kubernetes-list-type'?: string
  'x-kubernetes-list-map-keys'?: string[]
}

/** The openAPIV3Schema of a kind's version in one of the shared CRD files. */
export function crdSchema(file: string, kind: string, version: string): Schema {
  const docs = loadAll(readFileSync(join(SHARED, 'crds', file), 'utf8')) as {
    spec?: { names?: { kind?: string }; versions?: { name: string; schema: { openAPIV3Schema: Schema } }[] }
  }[]
  const crd = docs.find((d) => d?.spec?.names?.kind === kind)
  const found = crd?.spec?.versions?.find((v) => v.name === version)?.schema.openAPIV3Schema
  if (!found) throw new Error(`${file} has no ${kind} ${version}`)
  return found
}

/** Fields not declared, values of the wrong type, duplicate keys of map lists: as `.a.b: why`. */
export function schemaProblems(schema: Schema, value: unknown, path = ''): string[] {
  if (schema['x-kubernetes-preserve-unknown-fields'] || schema['x-kubernetes-int-or-string']) return []
  const at = path || '.'
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at}: not an object`]
      // metadata: declared as a bare object, validated by the apiserver itself.
      if (!schema.properties && schema.additionalProperties === undefined) return []
      return Object.entries(value).flatMap(([k, v]) => {
        const child =
          schema.properties?.[k] ??
          (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined)
        if (!child) return schema.additionalProperties === true ? [] : [`${path}.${k}: field not declared in schema`]
        return schemaProblems(child, v, `${path}.${k}`)
      })
    }
    case 'array': {
      if (!Array.isArray(value)) return [`${at}: not an array`]
      const keys = schema['x-kubernetes-list-type'] === 'map' ? (schema['x-kubernetes-list-map-keys'] ?? []) : []
      const seen = value.map((item) => JSON.stringify(keys.map((k) => (item as Record<string, unknown>)[k])))
      const duplicate = keys.length > 0 && new Set(seen).size !== seen.length ? [`${at}: duplicate entries`] : []
      return [
        ...duplicate,
        ...value.flatMap((item, i) => (schema.items ? schemaProblems(schema.items, item, `${path}[${i}]`) : [])),
      ]
    }
    case 'string':
      return typeof value === 'string' ? [] : [`${at}: not a string`]
    case 'integer':
      return Number.isInteger(value) ? [] : [`${at}: not an integer`]
    case 'number':
      return typeof value === 'number' ? [] : [`${at}: not a number`]
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${at}: not a boolean`]
    default:
      return []
  }
}
