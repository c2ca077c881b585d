#!/usr/bin/env bash
# npm run package [-- --out DIR] [--no-build]: the two Debian packages, built from this
# checkout with dpkg-deb (nothing from outside the npm registry and Debian):
#
#   unionize-orchestrator_VERSION_amd64.deb  the orchestrator, the hook and
#       its flusher, orchestratorctl (on PATH), the dnsmasq hook scripts and
#       examples, their units, /etc/orchestrator/{orchestrator,hook}.ini
#   unionize-agent_VERSION_amd64.deb         unionize and its units,
#       /etc/unionize/unionize.ini
#
# Each is self-contained: the daemons as npm run build bundled them (one file each),
# the native module they need (better-sqlite3, orchestrator only) beside
# them, and the project's own Node 24 runtime (scripts/node-runtime.sh) under
# /usr/lib/unionize/node. The units are config/*.service with their paths
# moved from the repository (/opt/unionize) to the package's. packaging/
# holds the control files and maintainer scripts.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$repo/dist-deb
build=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    # Package what is built (the tests: the suite built it, and other tests run from it meanwhile).
    --no-build) build=0; shift ;;
    *) echo "usage: npm run package [-- --out DIR] [--no-build]" >&2; exit 2 ;;
  esac
done

say() { printf 'package: %s\n' "$*" >&2; }
node=$repo/.node/bin/node
[[ -x $node ]] || { say "no Node runtime in .node: run scripts/setup.sh (or ./run-tests) first"; exit 1; }
command -v dpkg-deb >/dev/null || { say "dpkg-deb is missing (Debian: apt-get install dpkg)"; exit 1; }
export PATH=$repo/.node/bin:$PATH

version=$("$node" -p "require('$repo/package.json').version ?? '0.1.0'")
[[ $version == undefined ]] && version=0.1.0
arch=amd64
lib=/usr/lib/unionize

if [[ $build == 1 ]]; then
  say "building (tsc -b and the bundles)"
  (cd "$repo" && npm run --silent build)
fi
for built in packages/orchestrator/dist/bundle/orchestrator.mjs packages/unionize/dist/bundle/unionize.mjs packages/ctl/dist/bundle/orchestratorctl.mjs packages/hook/dist/orchestrator-hook.mjs; do
  [[ -f $repo/$built ]] || { say "$built is missing: npm run build (or leave out --no-build)"; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/unionize-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# units ROOT UNIT...: config/UNIT with the repository's paths made the package's.
units() {
  local root=$1; shift
  install -d "$root/usr/lib/systemd/system"
  for unit in "$@"; do
    sed -e "s#/opt/unionize/\.node/bin/node#$lib/node/bin/node#g" \
        -e "s#/opt/unionize/packages/orchestrator/dist/bundle/orchestrator\.mjs#$lib/orchestrator/lib/orchestrator.mjs#g" \
        -e "s#/opt/unionize/packages/unionize/dist/bundle/unionize\.mjs#$lib/agent/lib/unionize.mjs#g" \
        -e "s#/opt/unionize/packages/hook/dist/orchestrator-hook\.mjs#$lib/hook/lib/orchestrator-hook.mjs#g" \
        -e "s#/opt/unionize/dnsmasq/#$lib/dnsmasq/#g" \
        -e "s#file:///opt/unionize/config/#file:///usr/share/doc/unionize/#g" \
        -e "s#file:///opt/unionize/README.md#https://github.com/unionize/unionize\#readme#g" \
        -e "s@^# Paths: the repository at /opt/unionize.*@# Paths: as the Debian package installs them (under $lib).@" \
        -e "\@^# brings the project's own Node 24 LTS into /opt/unionize@d" \
        "$repo/config/$unit" > "$root/usr/lib/systemd/system/$unit"
    if grep -v '^#' "$root/usr/lib/systemd/system/$unit" | grep -q /opt/unionize; then
      say "config/$unit names a repository path this script does not map: $(grep -m1 -o '/opt/unionize[^ ]*' "$root/usr/lib/systemd/system/$unit")"
      exit 1
    fi
  done
}

# common ROOT PACKAGE: the runtime, the copyright and changelog, control files.
common() {
  local root=$1 package=$2
  install -d "$root$lib/node/bin" "$root/usr/share/doc/$package" "$root/DEBIAN"
  install -m 0755 "$repo/.node/bin/node" "$root$lib/node/bin/node"
  # Debian ships binaries without their symbol tables (the official binary keeps them: 25 MB).
  strip --strip-unneeded "$root$lib/node/bin/node"
  install -d "$root/usr/share/lintian/overrides"
  install -m 0644 "$repo/packaging/$package/lintian-overrides" "$root/usr/share/lintian/overrides/$package"
  install -m 0644 "$repo/packaging/copyright" "$root/usr/share/doc/$package/copyright"
  printf '%s (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- unionize maintainers <maintainers@unionize.invalid>  %s\n' \
    "$package" "$version" "$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo 'a source tree')" "$(date -R)" \
    | gzip -9n > "$root/usr/share/doc/$package/changelog.gz"
  for script in postinst prerm postrm; do
    [[ -f $repo/packaging/$package/$script ]] && install -m 0755 "$repo/packaging/$package/$script" "$root/DEBIAN/$script"
  done
  (cd "$root" && find etc -type f 2>/dev/null | sed 's#^#/#' | sort) > "$root/DEBIAN/conffiles"
  [[ -s $root/DEBIAN/conffiles ]] || rm -f "$root/DEBIAN/conffiles"
  local size
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$repo/packaging/$package/control" > "$root/DEBIAN/control"
}

# build ROOT: the .deb, owned by root whoever builds it.
build() {
  local root=$1 package=$2
  local deb="$out/${package}_${version}_${arch}.deb"
  dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
  say "$deb ($(du -h "$deb" | cut -f1))"
}

# --- unionize-orchestrator
o=$work/orchestrator
say "unionize-orchestrator: assembling"
install -d "$o$lib/orchestrator/lib" "$o$lib/hook/lib" "$o$lib/ctl/lib" "$o$lib/dnsmasq" "$o$lib/node_modules" "$o/usr/bin" \
  "$o/etc/orchestrator" "$o/usr/share/doc/unionize-orchestrator/examples"
install -m 0644 "$repo/packages/orchestrator/dist/bundle/orchestrator.mjs" "$o$lib/orchestrator/lib/orchestrator.mjs"
install -m 0644 "$repo/packages/ctl/dist/bundle/orchestratorctl.mjs" "$o$lib/ctl/lib/orchestratorctl.mjs"
sed '1{/^#!/d}' "$repo/packages/hook/dist/orchestrator-hook.mjs" > "$o$lib/hook/lib/orchestrator-hook.mjs"
# The SQLite and PostgreSQL stores' migrations, where the bundle looks for them (its folder's ../../drizzle*).
cp -r "$repo/packages/orchestrator/drizzle" "$o$lib/drizzle"
cp -r "$repo/packages/orchestrator/drizzle-postgres" "$o$lib/drizzle-postgres"
# The native module and what loads it, and the dashboard's chart script (read from node_modules at start).
for module in better-sqlite3 bindings file-uri-to-path uplot; do
  src=$repo/node_modules/$module
  dst=$o$lib/node_modules/$module
  install -d "$dst"
  case $module in
    better-sqlite3)
      cp -r "$src/package.json" "$src/lib" "$dst/"
      install -d "$dst/build/Release"
      install -m 0644 "$src/build/Release/better_sqlite3.node" "$dst/build/Release/"
      strip --strip-unneeded "$dst/build/Release/better_sqlite3.node" ;;
    uplot) cp -r "$src/package.json" "$src/dist" "$dst/" ;;
    *) cp -r "$src/." "$dst/" ;;
  esac
  find "$dst" \( -name '*.md' -o -name '.npmignore' \) -delete
done
for hook in orchestrator-hook orchestrator-hook-instance setup-bridge; do
  sed -e "s#/usr/local/sbin/orchestrator-hook#$lib/dnsmasq/orchestrator-hook#g" "$repo/dnsmasq/$hook.sh" > "$o$lib/dnsmasq/$hook"
  chmod 0755 "$o$lib/dnsmasq/$hook"
done
# The units and the hook script name setup-bridge.sh by its repository name too.
ln -s setup-bridge "$o$lib/dnsmasq/setup-bridge.sh"
printf '#!/bin/sh\nexec %s/node/bin/node %s/ctl/lib/orchestratorctl.mjs "$@"\n' "$lib" "$lib" > "$o/usr/bin/orchestratorctl"
chmod 0755 "$o/usr/bin/orchestratorctl"
install -m 0644 "$repo/config/orchestrator.ini" "$repo/config/hook.ini" "$o/etc/orchestrator/"
for example in dnsmasq/device-bridge.conf.example dnsmasq/container-bridge.conf.example config/orchestrator-hook-flush-sav.conf; do
  [[ -f $repo/$example ]] && install -m 0644 "$repo/$example" "$o/usr/share/doc/unionize-orchestrator/examples/"
done
# The hook's spool, made by systemd-tmpfiles at boot and by postinst (the units' sandboxes need it to exist).
install -D -m 0644 "$repo/config/orchestrator-hook.tmpfiles.conf" "$o/usr/lib/tmpfiles.d/unionize-orchestrator.conf"
units "$o" orchestrator.service orchestrator-hook-flush.service dnsmasq-devnet.service device-bridge.service dnsmasq-devnet-reload.path dnsmasq-devnet-reload.service
common "$o" unionize-orchestrator
build "$o" unionize-orchestrator

# --- unionize-agent
a=$work/agent
say "unionize-agent: assembling"
install -d "$a$lib/agent/lib" "$a$lib/libexec" "$a$lib/dnsmasq" "$a/etc/unionize"
install -m 0644 "$repo/packages/unionize/dist/bundle/unionize.mjs" "$a$lib/agent/lib/unionize.mjs"
# What the bundle finds at its folder's ../../libexec: the DHCP client's script and pipework's PATH shim.
cp -r "$repo/packages/unionize/libexec/." "$a$lib/libexec/"
sed -e "s#/usr/local/sbin/orchestrator-hook#$lib/dnsmasq/orchestrator-hook#g" "$repo/dnsmasq/setup-bridge.sh" > "$a$lib/dnsmasq/setup-bridge"
chmod 0755 "$a$lib/dnsmasq/setup-bridge"
ln -s setup-bridge "$a$lib/dnsmasq/setup-bridge.sh"
install -m 0644 "$repo/config/unionize.ini" "$a/etc/unionize/"
# attach = pipework: its drop-in and the tmpfiles entry for /run/netns (README, "Attaching").
install -d "$a/usr/share/doc/unionize-agent/examples"
install -m 0644 "$repo/config/unionize-pipework.conf" "$repo/config/unionize-pipework.tmpfiles.conf" "$a/usr/share/doc/unionize-agent/examples/"
units "$a" unionize.service container-bridge.service
common "$a" unionize-agent
build "$a" unionize-agent
