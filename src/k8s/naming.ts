// Kubernetes object names. Knative Services and KServe InferenceServices must be DNS-1035
// labels (start with a letter), and their children append suffixes, so names are kept short
// enough for the longest child name to stay within 63 characters.

export type Target = 'knative' | 'kserve'

/** Longest name per target: Knative revisions add "-00001"; KServe adds "-predictor-00001". */
export const MAX_NAME_LENGTH: Record<Target, number> = { knative: 57, kserve: 47 }

const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/

/** Why `name` is not a valid service name for `target`, or undefined when it is. */
export function nameProblem(name: string, target: Target): string | undefined {
  if (!DNS_1035.test(name)) {
    return `"${name}" is not a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit`
  }
  const max = MAX_NAME_LENGTH[target]
  if (name.length > max) return `"${name}" is ${name.length} characters; ${target} names may have at most ${max}`
  return undefined
}

/**
 * Derives a valid service name from any text (a registered model name may hold spaces, dots,
 * capitals and unicode). When the text had to be shortened or changed beyond recognition, a
 * short hash of the original keeps two different models from colliding.
 */
export function deriveName(text: string, target: Target, suffix = ''): string {
  const max = MAX_NAME_LENGTH[target]
  const base = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
  const room = max - suffix.length
  const exact = base.length > 0 && base.length <= room && base === text
  if (exact) return base + suffix
  const hash = fnv1a(text).slice(0, 6)
  const head = (base || 'model').slice(0, room - hash.length - 1).replace(/-+$/, '')
  return `${head}-${hash}${suffix}`
}

/** FNV-1a 32-bit as hex: a stable, dependency-free short hash for names. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h.toString(16).padStart(8, '0')
}
