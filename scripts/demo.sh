#!/usr/bin/env bash
# npm run demo [-- --devices N] [--once]: installs what is missing, builds, runs the lab demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >&2
exec node .tsbuild/test/demo.js "$@"
