#!/bin/sh
# dnsmasq --dhcp-script wrapper for the orchestrator hook. dnsmasq owns the
# hook's argument list (ACTION DUID ADDRESS [HOSTNAME]), so the hook's config
# file is named by ORCHESTRATOR_HOOK_CONFIG.
#
# Install as /usr/local/sbin/orchestrator-hook (mode 755, owned by root) and
# point dnsmasq at it: dhcp-script=/usr/local/sbin/orchestrator-hook
# Edit NODE and HOOK to where node and this repository are installed.
NODE=/usr/bin/node
HOOK=/opt/unionize/packages/hook/dist/orchestrator-hook.mjs
ORCHESTRATOR_HOOK_CONFIG=${ORCHESTRATOR_HOOK_CONFIG:-/etc/orchestrator/hook.ini}
export ORCHESTRATOR_HOOK_CONFIG
exec "$NODE" "$HOOK" "$@"
