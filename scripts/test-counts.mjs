// Prints jest's result file as the one plain line CI reads: "N passed, N failed".
// Suites that failed to run (syntax errors, a throwing beforeAll) count as failed tests.
import { readFileSync } from 'node:fs'

const file = process.argv[2] ?? 'test-results/jest.json'
let results
try {
  results = JSON.parse(readFileSync(file, 'utf8'))
} catch {
  console.log('0 passed, 1 failed')
  process.exit(1)
}
const brokenSuites = results.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length
const failed = results.numFailedTests + brokenSuites
console.log(`${results.numPassedTests} passed, ${failed} failed`)
process.exit(failed > 0 || results.numPassedTests === 0 ? 1 : 0)
