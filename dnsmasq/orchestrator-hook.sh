#!/bin/sh
# orchestrator-hook, as dnsmasq runs it: --dhcp-script=/usr/local/sbin/orchestrator-hook
# (install this file there, mode 755, owned by root).
#
# dnsmasq runs its script for one lease change at a time and waits for it, so
# this part is plain sh and does one thing: it writes the call (arguments,
# the DNSMASQ_* variables the hook reads, the time, a new event id, and this
# dnsmasq's server name and role from the hook's config) into the spool as one
# file, atomically and in order. It takes a few milliseconds; starting node
# would take a hundred.
#
# The spool flusher (`orchestrator-hook --flush --interval S`, systemd unit
# orchestrator-hook-flush.service) watches the spool, turns each call into a
# validated lease event, signs it and delivers it over one kept-alive TLS
# connection, in order, retrying what cannot be delivered yet. When no flusher
# is running (its lock in the spool names no live process), or the spool
# cannot be written, this script hands the call to node's orchestrator-hook
# instead, which delivers it (and what waits in the spool) within the
# [spool] budget_ms: slower, but nothing waits for a flusher that is not there.
#
# The config file is $ORCHESTRATOR_HOOK_CONFIG (default /etc/orchestrator/hook.ini);
# this script reads [dhcp] server, role and [spool] dir, max_events from it.
# Set NODE and HOOK (or the variables) to where node and this repository live.
NODE=${ORCHESTRATOR_HOOK_NODE:-/opt/unionize/.node/bin/node}
HOOK=${ORCHESTRATOR_HOOK_BUNDLE:-/opt/unionize/packages/hook/dist/orchestrator-hook.mjs}
CONFIG=${ORCHESTRATOR_HOOK_CONFIG:-/etc/orchestrator/hook.ini}
ORCHESTRATOR_HOOK_CONFIG=$CONFIG
export ORCHESTRATOR_HOOK_CONFIG

# The DNSMASQ_* variables packages/protocol/src/dnsmasq-call.ts reads (a unit test keeps the two lists equal).
CALL_ENV='IAID MAC INTERFACE LEASE_EXPIRES LEASE_LENGTH'

# Whatever goes wrong here, node's hook gets the call: it delivers or spools it itself.
by_node() {
	exec "$NODE" "$HOOK" "$@"
}

case ${1-} in
	# dnsmasq only asks init for a lease database (with --leasefile-ro); the others carry no lease.
	init|tftp|arp-add|arp-del|relay-snoop) exit 0 ;;
esac

# The config: [section] lines and key = value lines; ; and # start comments.
server= role=device dir=/var/spool/orchestrator-hook max_events=10000 section=
while IFS= read -r line || [ -n "$line" ]; do
	case $line in
		'['*']'*) section=${line#\[}; section=${section%%\]*}; continue ;;
		*=*) ;;
		*) continue ;;
	esac
	key=${line%%=*} value=${line#*=}
	# Trim blanks around both (sh patterns: strip the longest run of leading, then trailing, blanks).
	key=${key#"${key%%[! 	]*}"} key=${key%"${key##*[! 	]}"}
	value=${value#"${value%%[! 	]*}"} value=${value%"${value##*[! 	]}"}
	case $value in \"*\") value=${value#\"} value=${value%\"} ;; esac
	case $section.$key in
		dhcp.server) server=$value ;;
		dhcp.role) role=$value ;;
		spool.dir) dir=$value ;;
		spool.max_events) max_events=$value ;;
	esac
done < "$CONFIG" || by_node "$@"
case $dir in /*) ;; *) by_node "$@" ;; esac
case $max_events in ''|*[!0-9]*) by_node "$@" ;; esac
[ -n "$server" ] || by_node "$@"

# One newer than the newest spooled entry, so order holds even if the clock steps back.
# Names: <ms, 15 digits>-<pid>-<counter>-<event id>.call (packages/hook/src/spool.ts).
now=$(date +%s%N) || by_node "$@"
ms=${now%??????}
depth=0 last=
for entry in "$dir"/[0-9]*; do
	[ -e "$entry" ] || continue
	depth=$((depth + 1)) last=${entry##*/}
done
if [ -n "$last" ]; then
	last=${last%%-*}
	while [ "${last#0}" != "$last" ]; do last=${last#0}; done
	[ -n "$last" ] && [ "$ms" -le "$last" ] && ms=$((last + 1))
fi
if [ "$depth" -ge "$max_events" ]; then
	logger -t orchestrator-hook -p daemon.err "event lost: spool $dir is full ($depth events, max_events $max_events): $*" 2>/dev/null
	exit 0
fi
while [ ${#ms} -lt 15 ]; do ms=0$ms; done
read -r id < /proc/sys/kernel/random/uuid || by_node "$@"
name=$ms-$$-000000-$id.call

# Format (packages/hook/src/spooled-call.ts): magic, seen-at ns, event id, server, role, argc,
# the arguments, then NAME=value for each variable set; each field ends in NUL.
write_call() {
	printf 'orchestrator-hook-call 1\0%s\0%s\0%s\0%s\0%s\0' "$now" "$id" "$server" "$role" "$#" || return 1
	[ "$#" -eq 0 ] || printf '%s\0' "$@" || return 1
	for key in $CALL_ENV; do
		eval "isset=\${DNSMASQ_$key+x} value=\${DNSMASQ_$key-}"
		if [ -n "$isset" ]; then printf 'DNSMASQ_%s=%s\0' "$key" "$value" || return 1; fi
	done
}

umask 077
[ -d "$dir" ] || mkdir -p "$dir" 2>/dev/null
temp=$dir/.tmp-$name
# Not fsynced: under Docker's writes an fsync can take 100 ms, and dnsmasq waits for
# each call. A power cut can lose the last calls; dnsmasq fsyncs its own lease file
# and replays every lease as `old` when it starts (the orchestrator makes what is
# missing), and a lost `del` ends with the lease's expiry (the reconciler).
write_call "$@" > "$temp" 2>/dev/null && mv -f "$temp" "$dir/$name" || {
	rm -f "$temp"
	by_node "$@"
}

# Is a flusher holding the spool (pid and start time, as pid-lock.ts writes them)?
flusher_alive() {
	read -r pid start < "$dir/.flusher" 2>/dev/null || return 1
	case $pid in ''|*[!0-9]*) return 1 ;; esac
	read -r stat < "/proc/$pid/stat" 2>/dev/null || return 1
	# Fields after "pid (comm) ": 3 state ... 22 starttime.
	set -- ${stat##*") "}
	case $1 in Z|X) return 1 ;; esac
	[ "$start" = - ] || [ "${20-}" = "$start" ]
}
flusher_alive && exit 0
# No flusher: deliver the spool (this call included) now.
exec "$NODE" "$HOOK" --flush --budget
