#!/usr/bin/env bash
# Runs every vitest project (unit + real-VM) and ends with one plain summary line, "tests: N passed, N failed",
# which CI reads. A skipped test fails the run: prerequisites must be installed, never silently missing.
set -euo pipefail
cd "$(dirname "$0")/.."
results=.test-results/vitest.json
mkdir -p .test-results
status=0
# The tests' temp folders go to a TMPDIR of this run's own, so that whatever they leave behind is seen, named and
# removed. Allowed to stay: tsx's compile cache and the libvirt daemons' shared log folder (one fixed name).
scratch=$(mktemp -d /tmp/cloudlet-tests-XXXXXX)
TMPDIR=$scratch pnpm exec vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" ||
  status=$?
leftovers=$(find "$scratch" -mindepth 1 -maxdepth 1 ! -name 'tsx-*' ! -name cloudlet-libvirtd-logs -printf '%f ')
[ -z "$leftovers" ] || echo "tests left these in their temp folder $scratch: $leftovers" >&2
rm -rf "$scratch" || { echo "could not remove $scratch (a mount left behind?)" >&2; leftovers+="(unremovable)"; }
[ -f "$results" ] || { echo "tests: 0 passed, 1 failed (vitest wrote no results)"; exit 1; }
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  // Every test that neither passed nor failed (skipped, todo, or left pending by a file that ended early — seen
  // once, with numPendingTests 0) counts as skipped.
  const skipped = r.numTotalTests - r.numPassedTests - r.numFailedTests;
  const leftBehind = process.argv[2] === "" ? 0 : 1; // counted as one more failure
  if (r.numTotalTests === 0) { console.log("tests: 0 passed, 1 failed (no test ran)"); process.exit(1); }
  if (skipped > 0) console.error(`${skipped} test(s) skipped or not run: that counts as a failure here`);
  const failed = r.numFailedTests + leftBehind;
  console.log(`tests: ${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped` + (leftBehind ? " (files left behind)" : ""));
  process.exit(failed > 0 || skipped > 0 ? 1 : 0);
' "$results" "$leftovers" || status=1
exit "$status"
