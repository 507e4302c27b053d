#!/usr/bin/env bash
# The one test command (`npm test`, also what .ci/run calls): brings the local rig up, then runs
# every jest suite (unit and integration) on Node 24. Extra arguments go to jest.
# Writes test-results/jest.json and ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/node/bin/node ] || npm ci --no-audit --no-fund
export PATH=$PWD/node_modules/.bin:$PATH
mkdir -p test-results
# A crashed run must never print the previous run's count.
rm -f test-results/jest.json

# Integration suites need the rig; if it cannot come up they fail loudly (never skip).
if ! bash test/rig/rig.sh up; then
  echo "rig up FAILED: integration tests will fail; see the rig logs under \$RIG_STATE/logs" >&2
fi

node --experimental-vm-modules node_modules/jest/bin/jest.js --ci \
  --json --outputFile=test-results/jest.json "$@"
rc=$?
node scripts/test-counts.mjs test-results/jest.json || rc=1
exit $rc
