#!/usr/bin/env bash
# npm run bench [-- --quick] [--only GROUPS] [--devices N] [--sql]: sets up what
# is missing (scripts/setup.sh), then measures the pair against its floors on
# the lab. stdout: a table, notes, and as the last line one JSON object;
# progress on stderr. Exits 1 when a target is missed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
colour_only_on_a_terminal
setup_all
exec node .tsbuild/test/bench/main.js "$@"
