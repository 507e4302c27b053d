// The whole bundled action on an image cache hit, against the rig (issue 6): wall time of
// `node dist/index.js` as a runner starts it, and the same minus the "wait for ready" stage, which
// is Knative starting the revision's pod on the rig's node, not the action's work.
// Three cases: a redeploy of the deployed version (nothing changes: no new revision), a cache hit
// into a fresh service (new revision), and `action: plan` of the deployed service on a cache hit
// (every check, dry-run apply and diff; nothing waits, so its wall time is all the action's own).
// Usage: node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/action.ts [trials]
import { runDist } from '../test/support/run-dist.js'
import { readFileSync } from 'node:fs'

const trials = Number(process.argv[2] ?? 5)
const rigEnvFile = `${process.env['RIG_STATE'] ?? '/var/cache/mlflow-k8s-deploy-rig/state'}/rig.env`
const facts = Object.fromEntries(
  readFileSync(rigEnvFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
) as Record<string, string>

const env = { DOCKER_HOST: facts['DOCKER_HOST']!, KUBECONFIG: facts['KUBECONFIG_DEPLOYER']! }
const inputs = (name: string, action = 'deploy') => ({
  'model-uri': `models:/${facts['FIXTURE_MODEL']}/1`,
  'tracking-uri': facts['MLFLOW_URI']!,
  'image-repository': `${facts['REGISTRY']}/bench-wine`,
  'base-image': facts['KSERVE_BASE_IMAGE']!,
  'build-network': 'host',
  // The smoke test reaches the service's host through the rig's Envoy.
  'ingress-address': facts['GATEWAY_HTTP_ADDRESS']!,
  namespace: 'deploy',
  name,
  action,
})

/** Stage durations from the job summary table ("| wait for ready | ✅ ok | … | 1.2 s |"). */
function stageMs(summary: string, stage: string): number {
  const m = new RegExp(`^\\| ${stage} \\|.*\\| ([\\d.]+) (ms|s) \\|$`, 'm').exec(summary)
  return m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : 0
}

async function deploy(name: string): Promise<{ wallMs: number; waitMs: number; cacheHit: string }> {
  const run = await runDist(inputs(name), env)
  if (run.status !== 0) throw new Error(`action failed: ${run.errors.join(' | ')}`)
  return {
    wallMs: run.seconds * 1000,
    waitMs: stageMs(run.summary, 'wait for ready'),
    cacheHit: run.outputs['cache-hit']!,
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`

await deploy('bench-hit') // builds once if needed; later runs are cache hits
const same: number[] = []
for (let i = 0; i < trials; i++) same.push((await deploy('bench-hit')).wallMs)
const fresh: { wallMs: number; waitMs: number }[] = []
for (let i = 0; i < trials; i++) {
  const name = `bench-fresh-${i}`
  const r = await deploy(name)
  if (r.cacheHit !== 'true') throw new Error('expected an image cache hit')
  fresh.push(r)
  await runDist(inputs(name, 'delete'), env)
}
const plans: number[] = []
for (let i = 0; i < trials; i++) {
  const run = await runDist(inputs('bench-hit', 'plan'), env)
  if (run.status !== 0) throw new Error(`plan failed: ${run.errors.join(' | ')}`)
  plans.push(run.seconds * 1000)
}
await runDist(inputs('bench-hit', 'delete'), env)

console.log(
  `redeploy, same version (cache hit, no new revision): ${same.map(fmt).join(', ')}; median ${fmt(median(same))}`,
)
const own = fresh.map((r) => r.wallMs - r.waitMs)
console.log(`cache hit into a fresh service, whole action:        ${fresh.map((r) => fmt(r.wallMs)).join(', ')}`)
console.log(`  of which waiting for the container to start:       ${fresh.map((r) => fmt(r.waitMs)).join(', ')}`)
console.log(
  `  the action's own time:                             ${own.map(fmt).join(', ')}; median ${fmt(median(own))}`,
)
console.log(
  `plan of the live service on a cache hit, whole action: ${plans.map(fmt).join(', ')}; median ${fmt(median(plans))}`,
)
