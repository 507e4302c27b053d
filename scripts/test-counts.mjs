// Prints jest's result file as the one plain line CI reads: "N passed, N failed" (", N skipped"
// when any were), and exits non-zero unless the run was complete and clean:
//  - a suite that failed outside its tests (a syntax error, a throwing beforeAll/afterAll) counts
//    as one failed test, since jest counts none for it;
//  - skipped and todo tests make the run fail (lint forbids them; this catches what slips by);
//  - each jest project (unit, integration) must have executed at least one test, whatever
//    arguments were passed through, so a filter can never turn the integration suites off.
import { existsSync, readFileSync } from 'node:fs'

const PROJECTS = ['unit', 'integration']
const file = process.argv[2] ?? 'test-results/jest.json'
let results
try {
  results = JSON.parse(readFileSync(file, 'utf8'))
} catch {
  console.error(
    existsSync(file) ? `test-counts: ${file} is not jest's JSON` : `test-counts: jest wrote no ${file} (it crashed?)`,
  )
  console.log('0 passed, 1 failed')
  process.exit(1)
}

const problems = []
let failed = results.numFailedTests
for (const suite of results.testResults) {
  const failedInside = suite.assertionResults.some((a) => a.status === 'failed')
  if (suite.status === 'failed' && !failedInside) {
    failed += 1
    problems.push(`${suite.name}: the suite failed outside its tests (hook, import or syntax error)`)
  }
}
const skipped = results.numPendingTests + results.numTodoTests
if (skipped > 0) problems.push(`${skipped} test(s) skipped or todo: a skipped test proves nothing; remove or fix it`)
for (const project of PROJECTS) {
  const executed = results.testResults
    .filter((s) => s.name.includes(`/test/${project}/`))
    .flatMap((s) => s.assertionResults)
    .filter((a) => a.status === 'passed' || a.status === 'failed').length
  if (executed === 0) {
    failed += 1
    problems.push(`the ${project} project executed no test`)
  }
}

for (const p of problems) console.error(`test-counts: ${p}`)
console.log(`${results.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
process.exit(failed > 0 || skipped > 0 ? 1 : 0)
