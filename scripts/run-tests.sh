#!/usr/bin/env bash
# Runs every vitest project (unit + real-VM) and ends with one plain summary line, "tests: N passed, N failed",
# which CI reads. A skipped test fails the run: prerequisites must be installed, never silently missing.
set -euo pipefail
cd "$(dirname "$0")/.."
results=.test-results/vitest.json
mkdir -p .test-results
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
[ -f "$results" ] || { echo "tests: 0 passed, 1 failed (vitest wrote no results)"; exit 1; }
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  if (r.numTotalTests === 0) { console.log("tests: 0 passed, 1 failed (no test ran)"); process.exit(1); }
  if (skipped > 0) console.error(`${skipped} test(s) skipped: a skipped test counts as a failure here`);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  process.exit(r.numFailedTests > 0 || skipped > 0 ? 1 : 0);
' "$results" || status=1
exit "$status"
