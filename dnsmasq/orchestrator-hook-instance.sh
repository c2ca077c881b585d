#!/bin/sh
# dnsmasq --dhcp-script wrapper for the orchestrator hook on the container
# bridge (DHCP addressing mode): the same hook, with a config of its own whose
# [dhcp] says server = ctrnet, role = instance. dnsmasq owns the hook's
# argument list, so the config file is named by ORCHESTRATOR_HOOK_CONFIG.
#
# Install as /usr/local/sbin/orchestrator-hook-instance (mode 755, owned by
# root): dhcp-script=/usr/local/sbin/orchestrator-hook-instance
# Edit NODE and HOOK to where node and this repository are installed.
NODE=/usr/bin/node
HOOK=/opt/unionize/packages/hook/dist/orchestrator-hook.mjs
ORCHESTRATOR_HOOK_CONFIG=${ORCHESTRATOR_HOOK_CONFIG:-/etc/orchestrator/hook-instance.ini}
export ORCHESTRATOR_HOOK_CONFIG
exec "$NODE" "$HOOK" "$@"
