#!/usr/bin/env bash
# The daemons and orchestratorctl as the hosts run them: each bundled by esbuild
# into one ESM file, packages/NAME/dist/bundle/FILE.mjs (npm run build makes
# them after tsc -b). The systemd units in config/ start these, the lab and the
# bench start what the units name (test/lab/unit-command.ts), and scripts/package.sh
# ships them. One file instead of some 400 modules: about 12 MB less resident
# per daemon on Node 24 (README, Performance), and a faster start.
#
# better-sqlite3 stays outside (a native module, found in node_modules), and so
# does pg-native (node-postgres's optional libpq binding, not installed); CommonJS
# dependencies get a require(). A bundle keeps its package's relative paths
# (dist/bundle/ is as deep as dist/store/): the orchestrator's ../../drizzle,
# ../../drizzle-postgres and
# unionize's ../../libexec resolve as they do from the tsc output.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
esbuild=$repo/node_modules/.bin/esbuild

# bundle PACKAGE OUTNAME
bundle() {
  local dir=$repo/packages/$1/dist
  "$esbuild" "$dir/main.js" --bundle --platform=node --format=esm --target=node24 --charset=ascii \
    --external:better-sqlite3 --external:pg-native --legal-comments=none --log-level=warning \
    --banner:js="import { createRequire as __unionizeCreateRequire } from 'node:module'; const require = __unionizeCreateRequire(import.meta.url);" \
    --outfile="$dir/bundle/$2.mjs"
  # Run with an explicit node, never as a script: no #! line (it would name a node the package does not depend on).
  sed -i '1{/^#!/d}' "$dir/bundle/$2.mjs"
  # ASCII only, so node holds the source as one byte a character, not two (1.7 MB less resident for the
  # orchestrator): esbuild escapes every non-ASCII character in code (--charset=ascii) but copies the
  # comments it keeps as they are. Checked first, that what is not ASCII is only in comments (a line's
  # // or /* */ part, or a line of a block comment), then each run of it becomes a '?'.
  if ! perl -ne 'if (/[\x80-\xff]/) { my $l = $_; $l =~ s{/\*.*?\*/}{}g; $l =~ s{//.*$}{};
      next if $l =~ m{^\s*(\*|/\*)}; if ($l =~ /[\x80-\xff]/) { print STDERR "line $.: $_"; $bad = 1 } }
      END { exit($bad ? 1 : 0) }' "$dir/bundle/$2.mjs"; then
    echo "bundle-daemons: $2.mjs has non-ASCII outside comments (above); esbuild's --charset=ascii should have escaped it" >&2
    exit 1
  fi
  LC_ALL=C sed -i 's/[\x80-\xff]\+/?/g' "$dir/bundle/$2.mjs"
  chmod 0644 "$dir/bundle/$2.mjs"
}

bundle orchestrator orchestrator
bundle unionize unionize
bundle ctl orchestratorctl
