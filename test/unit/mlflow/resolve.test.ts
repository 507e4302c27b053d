import { stagesInUse } from '../../../src/mlflow/resolve.js'

const v = (version: string, current_stage?: string) => ({ name: 'm', version, current_stage })

test.each([
  [[v('1', 'Production'), v('2', 'Production'), v('3', 'Staging')], 'Production (v1, v2), Staging (v3)'],
  [
    [v('10', 'Staging'), v('9', 'Staging'), v('2', 'Archived'), v('4', 'None'), v('5')],
    'Staging (v9, v10), Archived (v2)',
  ],
  [[v('1', 'None')], ''],
  [[], ''],
])('stagesInUse %#', (versions, expected) => expect(stagesInUse(versions)).toBe(expected))
