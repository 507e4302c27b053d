// Runs the committed bundle the way the runner does: `node dist/index.js` with INPUT_* variables
// and the GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const DIST = join(import.meta.dirname, '../../dist/index.js')

function runAction(inputs: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'dist-'))
  const outputFile = join(dir, 'output')
  const summaryFile = join(dir, 'summary')
  writeFileSync(outputFile, '')
  writeFileSync(summaryFile, '')
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
  }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  const started = performance.now()
  const proc = spawnSync(process.execPath, [DIST], { env, encoding: 'utf8', timeout: 20_000 })
  return {
    status: proc.status,
    stdout: proc.stdout,
    ms: performance.now() - started,
    outputs: parseOutputFile(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
  }
}

/** GITHUB_OUTPUT uses `name<<DELIMITER\nvalue\nDELIMITER` blocks. */
function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of text.matchAll(/^([\w-]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) out[m[1]!] = m[3]!
  return out
}

const errors = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('::error::'))

test('no inputs: one line naming model-uri, non-zero exit, within a second', () => {
  const r = runAction({})
  expect(r.status).not.toBe(0)
  expect(r.ms).toBeLessThan(1000)
  expect(errors(r.stdout)).toHaveLength(1)
  expect(errors(r.stdout)[0]).toMatch(/^::error::`model-uri`: required/)
  expect(r.stdout).not.toMatch(/\n\s+at /)
})

test('a bad enum is one line that names the input and the allowed values', () => {
  const r = runAction({
    'model-uri': 'models:/wine/1',
    'tracking-uri': 'http://127.0.0.1:1',
    'image-repository': 'r.example/wine',
    target: 'knatve',
  })
  expect(r.status).not.toBe(0)
  expect(errors(r.stdout)).toEqual(['::error::`target`: must be `knative` or `kserve`, got "knatve"'])
})

test('a failing stage is one line naming the stage and the fix; known outputs and the summary are still written', () => {
  const r = runAction({
    'model-uri': 'models:/wine-classifier@champion',
    'tracking-uri': 'http://127.0.0.1:1',
    'image-repository': '127.0.0.1:5001/wine',
    namespace: 'deploy',
    'mlflow-token': 'super-secret-token',
  })
  expect(r.status).not.toBe(0)
  expect(r.stdout).toContain('::add-mask::super-secret-token')
  expect(r.stdout.replace('::add-mask::super-secret-token', '')).not.toContain('super-secret-token')
  expect(errors(r.stdout)).toEqual([
    '::error::resolve model: cannot reach MLflow at http://127.0.0.1:1: connection refused (is the server up, is the port right?); check tracking-uri',
  ])
  expect(r.outputs).toEqual({ name: 'wine-classifier', namespace: 'deploy', 'model-name': 'wine-classifier' })
  expect(r.summary).toContain('| resolve model | ❌ failed |')
  expect(r.summary).toContain('| Service | deploy/wine-classifier |')
})

test('delete runs only the delete stage', () => {
  const r = runAction({ 'model-uri': 'models:/wine-classifier/2', action: 'delete', name: 'wine', kubeconfig: '' })
  expect(r.status).not.toBe(0)
  expect(r.outputs['name']).toBe('wine')
  expect(errors(r.stdout)[0]).toMatch(/^::error::delete: /)
  expect(r.stdout).not.toContain('resolve model')
})
