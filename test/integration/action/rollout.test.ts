// Rollouts through the whole action on the real Knative Serving behind Envoy: the smoke test
// reaches the candidate (tag URL, or a tag the action adds to a split), a broken update fails in
// seconds and traffic goes back to the revision that served (no new revision), and the outputs
// say what serves and what failed.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KNATIVE_SERVICE } from '../../../src/k8s/kube.js'
import { ServingCluster } from '../../../src/k8s/index.js'
import { servingStatus } from '../../../src/k8s/readiness.js'
import { MemoryLogger } from '../../support/memory-logger.js'
import { rigEnv } from '../rig-env.js'
import {
  predict,
  probeRow,
  pyfuncPrediction,
  rigInputs,
  runAction,
  type ActionRun,
  expectSuccess,
} from './run-action.js'

const name = 'e2e-roll-kn'
const NS = 'deploy'
const MODEL = () => rigEnv('FIXTURE_MODEL')
const serviceUrl = () => `http://${name}.${NS}.${rigEnv('KNATIVE_DOMAIN')}`
const deploy = (version: string, extra: Record<string, string> = {}) =>
  runAction({ ...rigInputs(), 'model-uri': `models:/${MODEL()}/${version}`, target: 'knative', name, ...extra })
const admin = () =>
  ServingCluster.connect(
    { kubeconfig: { path: rigEnv('KUBECONFIG_ADMIN') }, kubeContext: undefined },
    new MemoryLogger(),
  )
const status = async () => servingStatus((await admin().kube.get(KNATIVE_SERVICE, NS, name))!)

/** The step's error as GitHub shows it (the ::error:: command escapes %, CR and LF). */
const errorOf = (run: ActionRun) =>
  run.errors.join('\n').replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%')

/** A template whose container runs `command` in the image the action built. */
function template(command: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'rollout-template-'))
  const file = join(dir, 'service.yaml')
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'serving.knative.dev/v1',
      kind: 'Service',
      metadata: { name: '$name', namespace: '$namespace' },
      spec: { template: { spec: { containers: [{ image: '$image', command }] } } },
    }),
  )
  return file
}

afterAll(async () => {
  await runAction({ ...rigInputs(), 'model-uri': `models:/${MODEL()}/1`, action: 'delete', name })
})

let v2Revision: string

test('v2 as a tagged candidate at 0 %: smoke-tested through its tag URL while v1 keeps all traffic; then promoted', async () => {
  expectSuccess(await deploy('1'))
  const staged = await deploy('2', { tag: 'next' })
  expectSuccess(staged)
  const tagUrl = `http://next-${name}.${NS}.${rigEnv('KNATIVE_DOMAIN')}`
  expect(staged.outputs['url']).toBe(tagUrl)
  expect(staged.stdout).toContain(`smoke test: POST ${tagUrl}/v2/models/${name}/infer`)
  expect(await predict(serviceUrl(), name)).toEqual(pyfuncPrediction('1'))
  expect(await predict(tagUrl, name)).toEqual(pyfuncPrediction('2'))
  v2Revision = staged.outputs['revision']!

  const promoted = await deploy('2')
  expectSuccess(promoted)
  // Same template: no new revision, the staged one takes the traffic.
  expect(promoted.outputs['revision']).toBe(v2Revision)
  expect(promoted.outputs['url']).toBe(serviceUrl())
  expect(await predict(serviceUrl(), name)).toEqual(pyfuncPrediction('2'))
  // Knative's own progress deadline is the wait's share of timeout (2m less the rollback's 24 s).
  const ksvc = await admin().kube.get(KNATIVE_SERVICE, NS, name)
  const template = ksvc?.spec?.['template'] as { metadata: { annotations: Record<string, string> } }
  expect(template.metadata.annotations['serving.knative.dev/progress-deadline']).toBe('96s')
})

test("a crash-looping update fails in seconds with the container's message; traffic goes back, no new revision", async () => {
  const run = await deploy('1', {
    template: template(['/bin/sh', '-c', 'echo "model exploded" >&2; exit 3']),
  })
  expect(run.status).toBe(1)
  const failed = run.outputs['failed-revision']!
  expect(failed).toMatch(new RegExp(`^${name}-\\d{5}$`))
  expect(failed).not.toBe(v2Revision)
  const error = errorOf(run)
  expect(error).toContain(`wait for ready: Service ${NS}/${name}`)
  expect(error).toMatch(
    new RegExp(
      `failed: CrashLoopBackOff: revision ${failed} cannot start: pod \\S+ container \\S+: exited with code 3: model exploded`,
    ),
  )
  expect(error).toContain(
    `rolled back: traffic switched back to ${v2Revision} 100% (model ${MODEL()} version 2); revision ${v2Revision} serves; the failed revision ${failed} is left unrouted`,
  )
  // What serves now, and what failed.
  expect(run.outputs['url']).toBe(serviceUrl())
  expect(run.outputs['revision']).toBe(v2Revision)
  expect(await predict(serviceUrl(), name)).toEqual(pyfuncPrediction('2'))
  const now = await status()
  expect(now.latestCreatedRevision).toBe(failed)
  expect(now.traffic.map((t) => [t.revision, t.percent])).toEqual([[v2Revision, 100]])
  console.log(`crash-looping update: the run took ${run.seconds.toFixed(1)} s (timeout ${rigInputs()['timeout']})`)
})

test('a revision that is Ready but dies on its first inference: the smoke test stops when its pods fail; traffic goes back', async () => {
  // Answers every GET (health and readiness probes) and exits on the first POST (an inference).
  const server = [
    'import http.server, os',
    'class H(http.server.BaseHTTPRequestHandler):',
    '    def do_GET(self):',
    '        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")',
    '    def do_POST(self):',
    '        os._exit(7)',
    'http.server.HTTPServer(("", 8080), H).serve_forever()',
  ].join('\n')
  const run = await deploy('1', { template: template(['python', '-c', server]) })
  expect(run.status).toBe(1)
  const failed = run.outputs['failed-revision']!
  const error = errorOf(run)
  // Knative itself marks a Ready revision failed at its container's first exit: RevisionFailed
  // ("Container failed with: <its last log lines>") or, first, RevisionMissing from its route; the
  // pods would say CrashLoopBackOff at the second.
  expect(error).toMatch(
    new RegExp(
      `smoke test: stopped: Service ${NS}/${name} during the smoke test: failed: (RevisionFailed|RevisionMissing|CrashLoopBackOff): .*${failed}`,
    ),
  )
  expect(error).toContain(`rolled back: traffic switched back to ${v2Revision} 100%`)
  expect(run.outputs['revision']).toBe(v2Revision)
  expect(await predict(serviceUrl(), name)).toEqual(pyfuncPrediction('2'))
  console.log(`dies on inference: the run took ${run.seconds.toFixed(1)} s`)
})

test("a preview beside its base service: the preview's smoke test reaches the preview, not the base", async () => {
  const inputs = { preview: 'true', 'pr-number': '77', 'github-token': '' }
  const preview = `${name}-pr-77`
  try {
    const run = await deploy('1', { ...inputs, 'smoke-test-input': JSON.stringify(probeRequest()) })
    expectSuccess(run)
    // The base serves v2 alone now; the preview's smoke test got v1's answer.
    expect(await predict(serviceUrl(), name)).toEqual(pyfuncPrediction('2'))
    const previewUrl = `http://${preview}.${NS}.${rigEnv('KNATIVE_DOMAIN')}`
    expect(run.outputs['url']).toBe(previewUrl)
    expect(run.stdout).toContain(`smoke test: POST ${previewUrl}/v2/models/${preview}/infer`)
    expect(run.stdout).toMatch(new RegExp(`smoke test passed: .*: ${escape(JSON.stringify([pyfuncPrediction('1')]))}`))
    expect(await predict(previewUrl, preview)).toEqual(pyfuncPrediction('1'))
  } finally {
    await runAction({ ...rigInputs(), 'model-uri': `models:/${MODEL()}/2`, action: 'delete', name, ...inputs })
  }
})

test('a 10 % split smoke-tests the candidate through a tag the action adds, never the stable revision', async () => {
  const run = await deploy('1', { 'traffic-percent': '10', 'smoke-test-input': JSON.stringify(probeRequest()) })
  expectSuccess(run)
  // Right after a rollback the rolled-back revision is still the latest ready one: the new revision
  // is staged at 0 %, verified, then given its 10 % (the shift-traffic stage).
  expect(run.stdout).toContain('new revision staged at 0 % until verified')
  expect(run.stdout).toMatch(/shift traffic: traffic: \S+ 10% \(tag candidate\), \S+ 90%/)
  const candidateUrl = `http://candidate-${name}.${NS}.${rigEnv('KNATIVE_DOMAIN')}`
  expect(run.stdout).toContain(`smoke test: POST ${candidateUrl}/v2/models/${name}/infer`)
  // The prediction the smoke test got is v1's (the candidate), not v2's (the 90 %).
  expect(run.stdout).toMatch(new RegExp(`smoke test passed: .*: ${escape(JSON.stringify([pyfuncPrediction('1')]))}`))
  expect(run.outputs['url']).toBe(serviceUrl())
  const now = await status()
  expect(now.traffic.map((t) => [t.revision, t.percent, t.tag])).toEqual([
    [run.outputs['revision'], 10, 'candidate'],
    [v2Revision, 90, undefined],
  ])
})

/** A V2 request for the probe row, on which v1 and v2 predict differently. */
const probeRequest = () => ({
  inputs: Object.entries(probeRow()).map(([n, v]) => ({ name: n, shape: [1], datatype: 'FP64', data: [v] })),
})

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
