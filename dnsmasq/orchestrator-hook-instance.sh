#!/bin/sh
# dnsmasq --dhcp-script for the container bridge (DHCP addressing mode): the
# same spool writer (orchestrator-hook.sh beside it: install that first) with a
# spool of its own. Its flusher reads a config of its own whose [dhcp] says
# server = ctrnet, role = instance, and whose [spool] dir is this spool
# (orchestrator-hook-flush.service with Environment=ORCHESTRATOR_HOOK_CONFIG=
# /etc/orchestrator/hook-instance.ini and the spool paths changed, e.g. as a
# copy named orchestrator-hook-flush-instance.service).
#
# Install as /usr/local/sbin/orchestrator-hook-instance (mode 755, owned by
# root): dhcp-script=/usr/local/sbin/orchestrator-hook-instance
ORCHESTRATOR_HOOK_SPOOL=${ORCHESTRATOR_HOOK_SPOOL:-/var/spool/orchestrator-hook-instance}
export ORCHESTRATOR_HOOK_SPOOL
exec /usr/local/sbin/orchestrator-hook "$@"
