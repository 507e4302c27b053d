// Connection facts written by `npm run rig:up` (test/rig/lib.sh env_set). A missing fact is a
// loud failure, never a skip: integration tests must reach the real servers.
import { readFileSync } from 'node:fs'

const cache = process.env.RIG_CACHE ?? '/var/cache/mlflow-k8s-deploy-rig'
const file = `${process.env.RIG_STATE ?? `${cache}/state`}/rig.env`

let facts: Record<string, string> | undefined

export function rigEnv(key: string): string {
  if (!facts) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      throw new Error(`rig facts not found at ${file}: start the rig with 'npm run rig:up'`)
    }
    facts = Object.fromEntries(
      text
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    )
  }
  const value = facts[key]
  if (value === undefined) throw new Error(`rig fact ${key} missing from ${file}: is that rig part up?`)
  return value
}
