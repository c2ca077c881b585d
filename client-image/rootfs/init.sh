#!/bin/sh
# Entry point of the per-device client container (busybox sh, also plain POSIX sh).
#
# Serves, on port 80, a page naming the device this container belongs to. Its
# facts come from one of two places:
#   - the environment the agent set when it made the container for its
#     device (a cold start: CLIENT_ID is set), which wins;
#   - else /run/unionize/device.env (NAME=value lines), which the unionize
#     agent writes when a device claims this container from a warm pool: a
#     pool member was started before any device was known, so its environment
#     cannot name one. (A container made from a kept image of a claimed one
#     has the old file, and its own device's environment.)
# The page is rendered for each request (cgi-bin/index.cgi runs `init.sh
# page`), so a claim shows at once. The values come from the device
# (hostname and DUID are chosen by it): HTML-escape them.
#
# busybox httpd `-p 80` binds the dual-stack wildcard [::]:80, so the page
# answers on eth1's IPv6 address even though eth1 is attached after start.
set -eu

WWW=${WWW_ROOT:-/www}
FACTS=/run/unionize/device.env

esc() {
  printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' \
    -e 's/"/\&quot;/g' -e "s/'/\&#39;/g"
}

# fact NAME: its value from the environment of a container made for its device, else from the facts file.
fact() {
  if [ -n "${CLIENT_ID:-}" ] || [ ! -f "$FACTS" ]; then
    env | sed -n "s/^$1=//p" | head -n 1
  else
    sed -n "s/^$1=//p" "$FACTS" | head -n 1
  fi
}

page() {
  duid=$(esc "$(fact DEVICE_DUID)")
  hostname=$(esc "$(fact DEVICE_HOSTNAME)")
  address=$(esc "$(fact DEVICE_ADDRESS)")
  client=$(esc "$(fact CLIENT_ID)")
  container=$(esc "$(fact CONTAINER_ADDRESS)")
  title=${hostname:-$duid}
  cat <<HTML
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
}

if [ "${1:-}" = page ]; then
  printf 'Content-Type: text/html; charset=utf-8\r\n\r\n'
  page
  exit 0
fi

# No index.html: busybox httpd then runs cgi-bin/index.cgi for /.
mkdir -p "$WWW/cgi-bin"
rm -f "$WWW/index.html"
printf '#!/bin/sh\nexec /init.sh page\n' > "$WWW/cgi-bin/index.cgi"
chmod 755 "$WWW/cgi-bin/index.cgi"

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
