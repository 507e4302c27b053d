// Benchmark: download a model with a 1 GB artifact from the rig's plain MLflow with the action's
// code, against curl fetching the same files from the same server. Run by bench/download.sh,
// which logs the model first and removes it after.
//   node --experimental-transform-types --import ./bench/ts-resolve.mjs bench/download.ts <run_id> [trials]
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NO_AUTH } from '../src/mlflow/auth.js'
import { proxiedLocation, downloadModel, listModelFiles } from '../src/mlflow/artifacts.js'
import { MlflowClient } from '../src/mlflow/client.js'
import { resolveModelRef } from '../src/mlflow/resolve.js'
import { UndiciTransport } from '../src/util/http.js'
import { MemoryLogger } from '../test/support/memory-logger.js'
import { rigEnv } from '../test/integration/rig-env.js'

const [runId, trialsArg, mode] = process.argv.slice(2)
if (!runId) throw new Error('usage: download.ts <run_id> [trials] [ours|curl|both]')
const trials = Number(trialsArg ?? 3)
const trackingUri = rigEnv('MLFLOW_URI')
const http = new UndiciTransport()
const client = new MlflowClient({ trackingUri, http, auth: NO_AUTH, log: new MemoryLogger() })

const model = await resolveModelRef(client, {
  kind: 'run',
  uri: `runs:/${runId}/bench-model`,
  runId,
  path: 'bench-model',
})
const files = await listModelFiles(client, model.artifactUri)
const total = files.reduce((n, f) => n + f.size, 0)
console.log(`model ${model.artifactUri}: ${files.length} files, ${(total / 2 ** 20).toFixed(0)} MiB`)

const scratch = mkdtempSync(join(tmpdir(), 'bench-download-'))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const results: Record<string, number[]> = { ours: [], curl: [] }

for (let i = 0; i < trials; i++) {
  if (mode !== 'curl') {
    const dest = join(scratch, `ours-${i}`)
    const t0 = performance.now()
    await downloadModel(client, model.artifactUri, files, dest)
    results.ours!.push((performance.now() - t0) / 1000)
    rmSync(dest, { recursive: true, force: true })
  }
  if (mode !== 'ours') {
    // curl, as a user would: the same proxied URLs, in parallel like the action (4 at a time).
    const loc = proxiedLocation(trackingUri, model.artifactUri)
    if (typeof loc === 'string') throw new Error(loc)
    const dest = join(scratch, `curl-${i}`)
    const args = ['-sS', '--no-progress-meter', '--fail', '--create-dirs', '--parallel', '--parallel-max', '4']
    for (const f of files) {
      args.push(
        '-o',
        join(dest, f.path),
        `${loc.base}/api/2.0/mlflow-artifacts/artifacts/${loc.path}/${f.path.split('/').map(encodeURIComponent).join('/')}`,
      )
    }
    const t0 = performance.now()
    execFileSync('curl', args, { stdio: 'inherit' })
    results.curl!.push((performance.now() - t0) / 1000)
    rmSync(dest, { recursive: true, force: true })
  }
}
rmSync(scratch, { recursive: true, force: true })
await http.close()

const rssMiB = process.resourceUsage().maxRSS / 1024
for (const [k, v] of Object.entries(results)) {
  if (v.length)
    console.log(
      `${k}: ${v.map((s) => s.toFixed(2)).join(' s, ')} s (median ${median(v).toFixed(2)} s, ${(total / 2 ** 20 / median(v)).toFixed(0)} MiB/s)`,
    )
}
if (results.ours!.length && results.curl!.length)
  console.log(`ratio ours/curl (medians): ${(median(results.ours!) / median(results.curl!)).toFixed(2)}`)
console.log(`peak RSS of this process: ${rssMiB.toFixed(0)} MiB`)
