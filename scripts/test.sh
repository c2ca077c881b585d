#!/usr/bin/env bash
# npm test: installs what is missing, builds, then runs the unit tests and the
# end-to-end tests (which need root, dockerd, dnsmasq and a DHCPv6 client; in
# CI they must run, elsewhere they skip with one line when something is missing).
# The `integration` project (unionize against a real dockerd) runs inside a lab
# namespace, started by test/unionize-docker.test.ts, not from here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
mkdir -p test-artifacts
status=0
npx vitest run --project unit --project e2e --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json "$@" || status=$?
# One plain closing line for tools that read it.
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-artifacts/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' || true
exit $status
