import { CORE_SCHEMA, load } from 'js-yaml'

/** Parses YAML with the JSON-compatible core schema (no custom tags, no `yes`/`on` booleans). */
export function loadYaml(text: string): unknown {
  return load(text, { schema: CORE_SCHEMA })
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
