#!/usr/bin/env bash
# Install what the build, the tests and the demo need, only what is missing,
# so a second run is instant:
#   1. Debian packages (as root): dockerd, dnsmasq, dhclient, ip, busybox, ...,
#      qemu + cpio for the QEMU test clients (their kernel, dhcpcd and libc
#      are fetched with apt-get download by test/lab/vm-image.ts into a cache,
#      never installed on the host), chromium for the dashboard test
#      (test/operator.test.ts drives it with playwright-core; no browser is
#      downloaded), and systemd for systemd-analyze (the units' check)
#   2. npm packages (npm ci, or npm install without a lockfile) when
#      node_modules is missing or older than the lockfile / a package.json
#   3. npm run build (tsc -b: incremental, quick when nothing changed)
# SKIP_APT=1 skips step 1 (e.g. on a machine where the lab is not run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'install-deps: %s\n' "$*"; }

# command that must exist -> Debian package that brings it
declare -A TOOLS=(
  [dockerd]=docker.io
  [dnsmasq]=dnsmasq-base
  [dhclient]=isc-dhcp-client
  [ip]=iproute2
  [openssl]=openssl
  [curl]=curl
  [ping]=iputils-ping
  [nsenter]=util-linux
  [sysctl]=procps
  [qemu-system-x86_64]=qemu-system-x86
  [cpio]=cpio
  [chromium]=chromium
  [systemd-analyze]=systemd
)
PACKAGES=(docker.io dnsmasq-base isc-dhcp-client iproute2 busybox-static openssl curl iputils-ping util-linux ca-certificates procps
  qemu-system-x86 cpio chromium systemd)

has_cmd() { PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

apt_missing=()
if [[ ${SKIP_APT:-0} != 1 ]]; then
  for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" && continue
    # A tool may come from elsewhere (e.g. a docker CE install): accept it.
    found=0
    if [[ $pkg == busybox-static ]]; then
      # The client image needs a static busybox (ldd fails on static binaries).
      [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 && found=1
    else
      for tool in "${!TOOLS[@]}"; do
        [[ ${TOOLS[$tool]} == "$pkg" ]] && has_cmd "$tool" && found=1
      done
    fi
    (( found )) || apt_missing+=("$pkg")
  done
fi

if (( ${#apt_missing[@]} > 0 )); then
  if [[ $(id -u) != 0 ]]; then
    say "missing Debian packages: ${apt_missing[*]}; run this script as root (or: apt-get install ${apt_missing[*]})" >&2
    exit 1
  fi
  command -v apt-get >/dev/null || { say "no apt-get: install ${apt_missing[*]} by hand" >&2; exit 1; }
  say "installing ${apt_missing[*]}"
  # Do not let the packages start services (a stock dockerd would add a docker0
  # bridge, firewall rules and ip_forward on this host): the lab runs its own.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  say "installed ${apt_missing[*]}"
fi

# npm packages: reinstall when node_modules is missing or older than the lockfile or a package.json.
stamp=node_modules/.package-lock.json
stale=0
if [[ ! -e $stamp ]]; then
  stale=1
else
  for f in package-lock.json package.json packages/*/package.json; do
    [[ -e $f && $f -nt $stamp ]] && stale=1
  done
fi
if (( stale )); then
  if [[ -e package-lock.json ]]; then
    say "npm ci"
    npm ci --no-audit --no-fund || { say "npm ci failed (lockfile out of date?); trying npm install"; npm install --no-audit --no-fund; }
  else
    say "npm install"
    npm install --no-audit --no-fund
  fi
  touch "$stamp"
fi

say "npm run build"
npm run --silent build
