import { formatTraffic } from '../../src/pipeline/wait-ready.js'
import { Report } from '../../src/report/report.js'
import { renderSummary } from '../../src/report/summary.js'

test('the summary shows the model, image, cache, endpoint, smoke test, traffic and every stage', () => {
  const r = new Report()
  r.set('url', 'http://wine.models.example.com')
  r.set('model-name', 'wine-classifier')
  r.set('model-version', '2')
  r.set('run-id', 'abc')
  r.set('image', 'ghcr.io/acme/wine@sha256:1234')
  r.set('cache-hit', 'true')
  r.set('revision', 'wine-00002')
  r.set('name', 'wine')
  r.set('namespace', 'models')
  r.smokeTest = 'passed: output-1 [3,1] from the input example in 16 ms'
  r.traffic = { before: 'wine-00001 100%', after: 'wine-00002 100%' }
  r.record({ name: 'plan image', status: 'ok', decision: 'image cache hit | reused', durationMs: 62 })
  r.record({ name: 'build image', status: 'skipped', decision: 'cache hit: build skipped', durationMs: 0 })
  const md = renderSummary(r, 'mlflow-k8s-deploy: deploy models:/wine-classifier@champion')
  for (const line of [
    '| Endpoint | http://wine.models.example.com |',
    '| Model | wine-classifier v2 |',
    '| Run | abc |',
    '| Image | ghcr.io/acme/wine@sha256:1234 |',
    '| Image cache hit | true |',
    '| Smoke test | passed: output-1 [3,1] from the input example in 16 ms |',
    '| Traffic before | wine-00001 100% |',
    '| Traffic after | wine-00002 100% |',
    '| plan image | ✅ ok | image cache hit \\| reused | 62 ms |',
    '| build image | ⏭️ skipped | cache hit: build skipped | 0 ms |',
  ]) {
    expect(md).toContain(line)
  }
})

test('a failure leads the summary', () => {
  const r = new Report()
  r.failure = 'apply: RBAC forbids "deployer"'
  expect(renderSummary(r, 't').split('\n')[2]).toBe('**Failed:** apply: RBAC forbids "deployer"')
})

test('a failure with evidence: the first line leads, the rest is kept line for line in a code block', () => {
  const r = new Report()
  r.failure =
    "build image: the model's requirements failed to install. The end of pip's output:\nERROR: a | b\nERROR: ``` c"
  expect(renderSummary(r, 't').split('\n').slice(2, 8)).toEqual([
    "**Failed:** build image: the model's requirements failed to install. The end of pip's output:",
    '',
    '````',
    'ERROR: a | b',
    'ERROR: ``` c',
    '````',
  ])
})

test.each([
  [[], 'not reported'],
  [[{ revision: 'wine-00002', percent: 100 }], 'wine-00002 100%'],
  [
    [
      { revision: 'wine-00002', percent: 10, tag: 'candidate' },
      { revision: 'wine-00001', percent: 90 },
    ],
    'wine-00002 10% (tag candidate), wine-00001 90%',
  ],
])('traffic %j', (traffic, text) => expect(formatTraffic(traffic)).toBe(text))
