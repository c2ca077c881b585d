#!/bin/sh
# dnsmasq --dhcp-script for the container bridge (DHCP addressing mode): the
# same hook (orchestrator-hook.sh beside it: install that first) with a config
# of its own, whose [dhcp] says server = ctrnet, role = instance, and whose
# [spool] dir is this dnsmasq's own. Run a flusher for that config too
# (orchestrator-hook-flush.service with Environment=ORCHESTRATOR_HOOK_CONFIG=
# /etc/orchestrator/hook-instance.ini, e.g. as a copy named
# orchestrator-hook-flush-instance.service).
#
# Install as /usr/local/sbin/orchestrator-hook-instance (mode 755, owned by
# root): dhcp-script=/usr/local/sbin/orchestrator-hook-instance
ORCHESTRATOR_HOOK_CONFIG=${ORCHESTRATOR_HOOK_CONFIG:-/etc/orchestrator/hook-instance.ini}
export ORCHESTRATOR_HOOK_CONFIG
exec /usr/local/sbin/orchestrator-hook "$@"
