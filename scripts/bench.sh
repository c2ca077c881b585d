#!/usr/bin/env bash
# npm run bench [-- --quick] [--only GROUPS] [--devices N] [--sql]: sets up what
# is missing (scripts/setup.sh), then measures the pair against its floors on
# the lab. stdout: a table, notes, and as the last line one JSON object;
# progress on stderr. Exits 1 when a target is missed.
set -euo pipefail
# Colour only on a terminal: vitest colours a pipe or a file too unless told.
if [[ ! -t 1 ]]; then
  export NO_COLOR=1
  unset FORCE_COLOR
fi
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
setup_all
exec node .tsbuild/test/bench/main.js "$@"
