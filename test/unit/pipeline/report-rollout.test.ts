import { RolloutError } from '../../../src/k8s/index.js'
import { reportRollout } from '../../../src/pipeline/wait-ready.js'
import { Report } from '../../../src/report/report.js'

// After the wait set the candidate's URL and revision, a smoke test fails in each way.
test.each<[string, RolloutError, Record<string, string>]>([
  [
    'rolled back: the previous revision serves',
    new RolloutError('x', 'rolled-back', [], { serving: { url: 'http://w', revision: 'w-1' }, failedRevision: 'w-2' }),
    { url: 'http://w', revision: 'w-1', 'failed-revision': 'w-2' },
  ],
  [
    'left for inspection: the candidate still serves at its URL',
    new RolloutError('x', 'left-for-inspection', [], { failedRevision: 'w-2' }),
    { url: 'http://w', revision: 'w-2', 'failed-revision': 'w-2' },
  ],
  ['gone (deleted meanwhile): nothing serves', new RolloutError('x', 'gone', []), {}],
])('%s', (_case, err, outputs) => {
  const report = new Report()
  report.set('url', 'http://w')
  report.set('revision', 'w-2')
  expect(() => reportRollout(report, err)).toThrow(err)
  expect(report.outputs).toEqual(outputs)
})
