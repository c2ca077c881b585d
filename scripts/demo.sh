#!/usr/bin/env bash
# ./demo [--devices N] [--qemu M] [--once] [--logs] (or npm run demo -- …):
# sets up what is missing (scripts/setup.sh), then runs the lab demo. The
# demo replaces this shell (exec), so SIGINT and SIGTERM reach it directly.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_all
exec node .tsbuild/test/demo.js "$@"
