#!/bin/sh
# Entry point of the per-device client container (busybox sh, also plain POSIX sh).
#
# Writes /www/index.html naming the device this container belongs to, from the
# environment the unionize agent sets, then serves it on port 80. The values
# come from the device (hostname and DUID are chosen by it): HTML-escape them.
#
# busybox httpd `-p 80` binds the dual-stack wildcard [::]:80, so the page
# answers on eth1's IPv6 address even though eth1 is attached after start.
set -eu

WWW=${WWW_ROOT:-/www}

esc() {
  printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' \
    -e 's/"/\&quot;/g' -e "s/'/\&#39;/g"
}

duid=$(esc "${DEVICE_DUID:-}")
hostname=$(esc "${DEVICE_HOSTNAME:-}")
address=$(esc "${DEVICE_ADDRESS:-}")
client=$(esc "${CLIENT_ID:-}")
container=$(esc "${CONTAINER_ADDRESS:-}")
title=${hostname:-$duid}

mkdir -p "$WWW"
cat > "$WWW/index.html.tmp" <<HTML
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>unionize container for ${title}</title></head>
<body>
<h1>This container belongs to device ${title}</h1>
<p>device DUID: ${duid}</p>
<p>device hostname: ${hostname}</p>
<p>device address: ${address}</p>
<p>client id: ${client}</p>
<p>container address: ${container}</p>
</body>
</html>
HTML
mv "$WWW/index.html.tmp" "$WWW/index.html"

# Real images (see Dockerfile) also run sshd; the registry-free test image has none.
if [ -x /usr/sbin/sshd ]; then
  mkdir -p /run/sshd /root/.ssh
  chmod 700 /root/.ssh
  # Host keys are made per container at first start, never baked into the image.
  ssh-keygen -A >/dev/null
  if [ -n "${AUTHORIZED_KEYS:-}" ]; then
    printf '%s\n' "$AUTHORIZED_KEYS" > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
  fi
  /usr/sbin/sshd -o PasswordAuthentication=no -o PermitRootLogin=prohibit-password
fi

if command -v httpd >/dev/null 2>&1; then
  exec httpd -f -v -p 80 -h "$WWW"
fi
exec busybox httpd -f -v -p 80 -h "$WWW"
