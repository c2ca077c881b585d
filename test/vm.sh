#!/usr/bin/env bash
# Boot one QEMU test client on a bridge in a network namespace: a Debian
# cloud kernel and a small initramfs (busybox, dhcpcd) that takes a DHCPv6
# lease and answers 'fetch URL' on its serial console. As root.
#
#   test/vm.sh --netns NS --bridge BRIDGE [--fetch URL | --once] [--accel kvm]
#   test/vm.sh --build          # only build (or find) the cached image
#   test/vm.sh --help
#
# A thin entry point: the image builder (test/lab/vm-image.ts) and the VM
# runner (test/lab/qemu.ts) are the ones the lab, the demo (--qemu N) and
# test/qemu.test.ts use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
npm run --silent build >&2
exec node .tsbuild/test/vm.js "$@"
