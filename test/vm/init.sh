#!/bin/busybox sh
# /init of the QEMU test client: a busybox sh script in a small initramfs
# (test/lab/vm-image.ts builds it). It plays a device on the device bridge:
#
#   1. mount proc/sys/dev, insmod the virtio_net chain, bring up eth0 (no DAD);
#   2. take a DHCPv6 lease with dhcpcd (DUID-LL from the MAC, so the host can
#      predict it) and wait for the router advertisement's default route;
#   3. print `VM-LEASE duid=… address=… hostname=… mac=…` on the serial console;
#   4. read commands from the serial console, one a line, and answer on it:
#        fetch URL   busybox wget URL; the page, each line behind "| ",
#                    between VM-PAGE-BEGIN URL and VM-PAGE-END rc=N
#        ping ADDR   one ping; VM-PING rc=N
#        log         dhcpcd's log between VM-LOG-BEGIN and VM-LOG-END
#        poweroff    release the lease (dnsmasq then calls its hook with
#                    `del`), print VM-RELEASED rc=N, and power off
#
# Anything that fails prints `VM-FAIL reason` and powers off: with panic=-1
# and qemu -no-reboot the VM never hangs the host waiting for it.
# Kernel parameters read here: vm.hostname=NAME (sent in the DHCPv6 FQDN option).

PATH=/bin:/sbin
export PATH
/bin/busybox mkdir -p /proc /sys /dev /run/dhcpcd /var/lib/dhcpcd /tmp /etc
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
# Keep kernel messages off the console: the host parses it line by line.
dmesg -n 1
# The host's commands are not echoed back into the output it reads.
stty -echo 2>/dev/null

fail() {
  echo "VM-FAIL $*"
  [ -f /tmp/dhcpcd.log ] && sed 's/^/VM-LOG /' /tmp/dhcpcd.log | tail -n 20
  poweroff -f
  sleep 5
}

hostname=lab-vm
for arg in $(cat /proc/cmdline); do
  case $arg in
    vm.hostname=*) hostname=${arg#vm.hostname=} ;;
  esac
done
case $hostname in
  *[!a-zA-Z0-9-]* | '') fail "bad vm.hostname" ;;
esac
hostname "$hostname"
echo "VM-BOOT hostname=$hostname kernel=$(uname -r)"

# Every address here is unique by construction: duplicate address detection only costs time.
echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad
echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad

# virtio_net and its dependencies, in the order their `depends=` strings give
# (written by the image builder).
for module in $(cat /lib/modules/order); do
  insmod "/lib/modules/$module.ko" || fail "insmod $module"
done
i=0
until [ -e /sys/class/net/eth0 ]; do
  i=$((i + 1))
  [ $i -gt 100 ] && fail "no eth0 after 10 s"
  sleep 0.1
done
ip link set lo up
ip link set eth0 up || fail "ip link set eth0 up"

# dhcpcd.conf(5). DUID-LL: derived from the MAC alone (RFC 8415 section 11.4).
cat > /etc/dhcpcd.conf <<CONF
duid ll
ipv6only
nodev
nodelay
script /bin/true
hostname $hostname
fqdn ptr
allowinterfaces eth0
CONF
# Forks to the background once eth0 has a DHCPv6 address; exits non-zero after -t.
dhcpcd -6 -f /etc/dhcpcd.conf -j /tmp/dhcpcd.log -d --waitip=6 -t 45 eth0 >/dev/null 2>&1 \
  || fail "dhcpcd: no DHCPv6 lease"

# DHCPv6 carries no route: the default route comes from dnsmasq's router advertisement.
i=0
until [ -n "$(ip -6 route show default)" ]; do
  i=$((i + 1))
  [ $i -gt 300 ] && fail "no default route (router advertisement) after 30 s"
  sleep 0.1
done

address=$(ip -6 -o addr show dev eth0 scope global | sed -n 's/.* inet6 \([0-9a-f:]*\)\/.*/\1/p' | head -n 1)
[ -n "$address" ] || fail "no global address on eth0"
echo "VM-LEASE duid=$(cat /var/lib/dhcpcd/duid) address=$address hostname=$hostname mac=$(cat /sys/class/net/eth0/address)"

while read -r cmd arg; do
  case $cmd in
    fetch)
      echo "VM-PAGE-BEGIN $arg"
      # busybox 1.35's wget -T crashes (SIGSEGV); bound it with timeout(1) instead.
      timeout 20 wget -q -O /tmp/page "$arg"
      rc=$?
      # Each line of the page behind "| ", so a page cannot forge a marker.
      while IFS= read -r line || [ -n "$line" ]; do
        echo "| $line"
      done < /tmp/page
      echo "VM-PAGE-END rc=$rc"
      rm -f /tmp/page
      ;;
    ping)
      ping -c 1 -W 2 "$arg" >/dev/null 2>&1
      echo "VM-PING rc=$?"
      ;;
    log)
      echo "VM-LOG-BEGIN"
      cat /tmp/dhcpcd.log
      echo "VM-LOG-END"
      ;;
    poweroff)
      # RFC 8415 section 18.2.7: Release, so the server ends the lease now.
      dhcpcd -6 -k eth0 >/dev/null 2>&1
      rc=$?
      i=0
      while [ -n "$(pidof dhcpcd)" ] && [ $i -lt 100 ]; do
        i=$((i + 1))
        sleep 0.1
      done
      echo "VM-RELEASED rc=$rc"
      poweroff -f
      ;;
    '') ;;
    *) echo "VM-ERROR unknown command: $cmd" ;;
  esac
done
fail "serial console closed"
