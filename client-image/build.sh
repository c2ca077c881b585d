#!/usr/bin/env bash
# Build the client image without a registry or base image: a root filesystem of
# static busybox plus init.sh, fed to `docker import`.
#
#   client-image/build.sh [--force] IMAGE_TAG
#
# Uses whatever DOCKER_HOST is set. Skips the build when IMAGE_TAG exists and
# carries the same content hash (label io.unionize.client-image.hash), so it
# is instant on a warm host and rebuilds by itself when init.sh changes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
force=0
tag=
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h|--help) echo "usage: $0 [--force] IMAGE_TAG"; exit 0 ;;
    -*) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    *) tag=$arg ;;
  esac
done
[[ -n $tag ]] || { echo "usage: $0 [--force] IMAGE_TAG" >&2; exit 2; }

# Debian's docker.io client (/usr/bin/docker) matches its daemon's API; a newer
# client elsewhere on PATH negotiates down, but prefer the matching one.
docker=${DOCKER:-}
if [[ -z $docker ]]; then
  if [[ -x /usr/bin/docker ]]; then docker=/usr/bin/docker; else docker=$(command -v docker); fi
fi

busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || { echo "build.sh: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }
if ! "$busybox" --list >/dev/null 2>&1 || ldd "$busybox" >/dev/null 2>&1; then
  echo "build.sh: $busybox is not a static busybox (apt-get install busybox-static)" >&2
  exit 1
fi

applets=(sh ash httpd ip sleep cat sed printf echo mkdir mv rm ls ps kill env id
  hostname ping ping6 wget nc ifconfig route cp ln chmod grep tr date true false
  test '[' head tail wc uname mount umount sysctl)

hash=$( { sha256sum "$here/rootfs/init.sh" "${BASH_SOURCE[0]}" "$busybox"; printf '%s\n' "${applets[@]}"; } \
  | sha256sum | cut -c1-16)

if (( ! force )); then
  current=$("$docker" image inspect --format '{{ index .Config.Labels "io.unionize.client-image.hash" }}' "$tag" 2>/dev/null || true)
  if [[ $current == "$hash" ]]; then
    echo "build.sh: $tag is up to date ($hash)"
    exit 0
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/rootfs
mkdir -p "$root"/{bin,sbin,etc,www,tmp,proc,sys,dev,run,root}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in "${applets[@]}"; do ln -s busybox "$root/bin/$applet"; done
install -m 755 "$here/rootfs/init.sh" "$root/init.sh"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

tar --numeric-owner --owner=0 --group=0 -C "$root" -c . | "$docker" import \
  --change 'CMD ["/init.sh"]' \
  --change 'ENV PATH=/bin:/sbin' \
  --change 'EXPOSE 80' \
  --change 'LABEL io.unionize.image=client' \
  --change "LABEL io.unionize.client-image.hash=$hash" \
  --message "unionize client image (busybox), $hash" \
  - "$tag" >/dev/null
echo "build.sh: built $tag ($hash)"
