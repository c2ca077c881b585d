#!/bin/sh
# Make (or re-check) one bridge for unionize: the device bridge on the
# orchestrator host, or the container bridge on a docker host. Idempotent:
# run it again and it changes only what differs.
#
#   setup-bridge.sh --bridge br-dev --address fd00:1::1/64 [--mac 02:..] [--forwarding] [--route PREFIX=VIA]...
#   setup-bridge.sh --bridge br-dev --down
#
# The bridge gets a fixed MAC (given, or derived from its name). Without one
# a Linux bridge takes the lowest MAC of its ports, which changes whenever
# that port (a container's veth) goes: every neighbour of the bridge then holds
# a stale entry for the gateway and loses its route until the entry expires.
# Its address is added with nodad (no duplicate address detection wait), and
# the bridge does not take router advertisements itself.
# --forwarding turns on IPv6 forwarding (both hosts route between the device
# and container prefixes); --route adds a route, e.g. to the other host's
# prefix over the transit link: --route fd00:3::/64=fd00:2::2.
# Commands run with their arguments as given, no eval.
set -eu

usage() {
  echo "usage: $0 --bridge NAME (--address ADDR/LEN [--mac MAC] [--forwarding] [--route PREFIX=VIA]... | --down)" >&2
  exit 2
}

bridge= address= mac= forwarding=0 down=0 routes=
while [ $# -gt 0 ]; do
  case $1 in
    --bridge) [ $# -ge 2 ] || usage; bridge=$2; shift 2 ;;
    --address) [ $# -ge 2 ] || usage; address=$2; shift 2 ;;
    --mac) [ $# -ge 2 ] || usage; mac=$2; shift 2 ;;
    --route) [ $# -ge 2 ] || usage; routes="$routes $2"; shift 2 ;;
    --forwarding) forwarding=1; shift ;;
    --down) down=1; shift ;;
    -h|--help) usage ;;
    *) echo "$0: unknown argument: $1" >&2; usage ;;
  esac
done

# Interface names as Linux allows them (15 characters), safe in paths and logs.
echo "$bridge" | grep -Eq '^[A-Za-z0-9_.-]{1,15}$' || { echo "$0: --bridge: not an interface name: '$bridge'" >&2; exit 2; }

if [ "$down" = 1 ]; then
  if ip link show dev "$bridge" >/dev/null 2>&1; then ip link del dev "$bridge"; echo "$bridge: removed"; fi
  exit 0
fi

echo "$address" | grep -Eq '^[0-9A-Fa-f:]+/[0-9]{1,3}$' || { echo "$0: --address: not IPV6/LEN: '$address'" >&2; exit 2; }
if [ -z "$mac" ]; then
  # Locally administered, unicast, stable: 02 and five bytes of the name's hash.
  mac=02:$(printf '%s' "$bridge" | sha256sum | cut -c1-10 | sed 's/\(..\)/\1:/g; s/:$//')
fi
echo "$mac" | grep -Eq '^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$' || { echo "$0: --mac: not a MAC: '$mac'" >&2; exit 2; }

if ! ip link show dev "$bridge" >/dev/null 2>&1; then
  ip link add name "$bridge" address "$mac" type bridge
  echo "$bridge: made"
fi
ip link set dev "$bridge" address "$mac"
# The router's own bridge takes no RAs (it sends them: dnsmasq enable-ra).
sysctl -q -w "net.ipv6.conf.$bridge.accept_ra=0"
ip -6 addr replace "$address" dev "$bridge" nodad
ip link set dev "$bridge" up
if [ "$forwarding" = 1 ]; then sysctl -q -w net.ipv6.conf.all.forwarding=1; fi
for route in $routes; do
  prefix=${route%%=*} via=${route#*=}
  [ "$prefix" != "$route" ] || { echo "$0: --route: give PREFIX=VIA, got '$route'" >&2; exit 2; }
  ip -6 route replace "$prefix" via "$via"
done
echo "$bridge: $mac $address up$( [ "$forwarding" = 1 ] && echo ', IPv6 forwarding on')"
