#!/bin/sh
# orchestrator-hook, as dnsmasq runs it: --dhcp-script=/usr/local/sbin/orchestrator-hook
# (install this file there, mode 755, owned by root).
#
# dnsmasq runs its script for one lease change at a time and waits for it, so
# this is plain sh that does one thing in a few milliseconds: it writes the
# call (the time, a new event id, the arguments and the DNSMASQ_* variables
# the flusher reads) into the spool as one file, atomically and in order. It
# reads no config file and delivers nothing: the flusher
# (`orchestrator-hook --flush --interval S`, orchestrator-hook-flush.service)
# is the spool's only reader; it reads hook.ini, turns each call into a
# validated, signed lease event and delivers it, in order.
#
# Settings come from the environment the wrapper or unit gives it (dnsmasq
# passes its own environment to its script):
#   ORCHESTRATOR_HOOK_SPOOL       the spool folder; the same as the flusher's
#                                 [spool] dir (default /var/spool/orchestrator-hook)
#   ORCHESTRATOR_HOOK_MAX_EVENTS  beyond this many waiting calls a new call is
#                                 logged (syslog, error) and not kept (default 10000)
# When no live flusher holds the spool (its .flusher file), each call says so
# in syslog: the call waits in the spool for a flusher to deliver it.
dir=${ORCHESTRATOR_HOOK_SPOOL:-/var/spool/orchestrator-hook}
max_events=${ORCHESTRATOR_HOOK_MAX_EVENTS:-10000}

# The DNSMASQ_* variables packages/protocol/src/dnsmasq-call.ts reads (a unit test keeps the two lists equal).
CALL_ENV='IAID MAC INTERFACE LEASE_EXPIRES LEASE_LENGTH'

# The log is the call's last copy when it cannot be spooled: say so, and exit non-zero (dnsmasq logs it).
lost() {
	logger -t orchestrator-hook -p daemon.err -- "event lost: $1: $CALL" 2>/dev/null
	printf 'orchestrator-hook: event lost: %s: %s\n' "$1" "$CALL" >&2
	exit 1
}
CALL="$*"

case ${1-} in
	# dnsmasq only asks init for a lease database (with --leasefile-ro); the others carry no lease.
	init|tftp|arp-add|arp-del|relay-snoop) exit 0 ;;
esac
case $dir in /*) ;; *) lost "ORCHESTRATOR_HOOK_SPOOL must be an absolute path, got '$dir'" ;; esac
case $max_events in ''|*[!0-9]*) lost "ORCHESTRATOR_HOOK_MAX_EVENTS must be a number, got '$max_events'" ;; esac

# One newer than the newest spooled entry, so order holds even if the clock steps back.
# Names: <ms, 15 digits>-<pid>-<event id>.call (packages/hook/src/spool.ts).
now=$(date +%s%N) || lost 'no clock'
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
[ "$depth" -lt "$max_events" ] || lost "spool $dir is full ($depth calls, ORCHESTRATOR_HOOK_MAX_EVENTS $max_events)"
while [ ${#ms} -lt 15 ]; do ms=0$ms; done
read -r id < /proc/sys/kernel/random/uuid || lost 'no event id (/proc/sys/kernel/random/uuid)'
name=$ms-$$-$id.call

# Format (packages/hook/src/spooled-call.ts): magic, seen-at ns, event id, argc,
# the arguments, then NAME=value for each variable set; each field ends in NUL.
write_call() {
	printf 'orchestrator-hook-call 2\0%s\0%s\0%s\0' "$now" "$id" "$#" || return 1
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
	lost "cannot write into spool $dir"
}

# Is a flusher holding the spool (pid and start time, as pid-lock.ts writes them)? Only read, never taken.
flusher_alive() {
	read -r pid start < "$dir/.flusher" 2>/dev/null || return 1
	case $pid in ''|*[!0-9]*) return 1 ;; esac
	read -r stat < "/proc/$pid/stat" 2>/dev/null || return 1
	# Fields after "pid (comm) ": 3 state ... 22 starttime.
	set -- ${stat##*") "}
	case $1 in Z|X) return 1 ;; esac
	[ "$start" = - ] || [ "${20-}" = "$start" ]
}
flusher_alive || logger -t orchestrator-hook -p daemon.warning -- "no flusher delivers spool $dir (orchestrator-hook-flush.service with [spool] dir = $dir): the call waits there" 2>/dev/null
exit 0
