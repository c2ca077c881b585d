#!/usr/bin/env bash
# npm run bench [-- --quick] [--only GROUPS] [--devices N] [--sql]: installs what is
# missing, builds, and measures the pair against its floors on the lab (issue 5).
# stdout: a table, notes, and as the last line one JSON object; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >&2
exec node .tsbuild/test/bench/main.js "$@"
