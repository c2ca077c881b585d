#!/usr/bin/env bash
# ./run-tests [vitest args] (or npm test): sets up what is missing
# (scripts/setup.sh), then runs the unit tests and the end-to-end tests. The
# end-to-end tests need root, dockerd, dnsmasq and DHCPv6 clients; elsewhere
# they skip with one line each, and under CI=true they may not skip at all.
# The `integration` project (unionize against a real dockerd) runs nested,
# inside a lab namespace, started by test/unionize-docker.test.ts; its counts
# are added to the closing line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
colour_only_on_a_terminal
setup_all
mkdir -p test-artifacts
rm -f test-artifacts/vitest.json test-artifacts/vitest-integration.json
status=0
npx vitest run --project unit --project e2e --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json "$@" || status=$?
node scripts/test-summary.mjs test-artifacts/vitest.json test-artifacts/vitest-integration.json || status=1
exit $status
