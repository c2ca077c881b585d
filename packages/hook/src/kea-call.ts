import { leaseEventOf, type HookCall, type HookCallContext } from '@unionize/protocol/dnsmasq-call';
import type { LeaseAction } from '@unionize/protocol/lease-event';

/**
 * Kea's run_script hook library (libdhcp_run_script.so) as a lease source.
 * Kea runs the script with one argument, the hook point, and the lease in its
 * environment (Kea ARM, "Run Script Support"; run_script.cc):
 *
 *   LEASE6_ADDRESS, LEASE6_DUID (colon hex), LEASE6_IAID (a number),
 *   LEASE6_HOSTNAME, LEASE6_HWADDR (colon hex, may be empty), LEASE6_CLTT
 *   (epoch seconds), LEASE6_VALID_LIFETIME (seconds), LEASE6_TYPE (IA_NA,
 *   IA_TA, IA_PD), QUERY6_IFACE_NAME (where a packet came in); for
 *   leases6_committed the same per lease as LEASES6_AT<i>_* (LEASES6_SIZE of
 *   them) and DELETED_LEASES6_AT<i>_* (DELETED_LEASES6_SIZE).
 *
 * Each maps to the lease event the dnsmasq source makes for the same change:
 * a lease handed out (committed) is `add`, a lease kept (renew, rebind) is
 * `old`, a lease gone (release, expire, decline, a committed deletion) is
 * `del`. Everything is the device's to choose and is validated as dnsmasq's
 * calls are (leaseEventOf).
 */

/** What each hook point means; `leases6_committed` carries its leases in LEASES6_AT<i>_ and DELETED_LEASES6_AT<i>_. */
const HOOK_POINTS: Record<string, LeaseAction | 'committed'> = {
  lease6_renew: 'old',
  lease6_rebind: 'old',
  lease6_release: 'del',
  lease6_expire: 'del',
  lease6_decline: 'del',
  leases6_committed: 'committed',
};

/** Far above a real exchange (one lease per IA); a flood of them is refused, not read. */
const MAX_COMMITTED = 64;
/** Kea's "infinite" valid lifetime. */
const INFINITE = 0xffff_ffff;

type Env = Readonly<Record<string, string | undefined>>;

export function parseKeaCall(argv: readonly string[], env: Env, ctx: HookCallContext): HookCall[] {
  const [point] = argv;
  if (!point) return [{ kind: 'ignored', reason: 'no hook point argument' }];
  const meaning = HOOK_POINTS[point];
  if (meaning === undefined) return [{ kind: 'ignored', reason: `hook point ${JSON.stringify(point.slice(0, 32))} is not used` }];
  const iface = optional(env.QUERY6_IFACE_NAME) ?? null;
  if (meaning !== 'committed') return [leaseOf(env, 'LEASE6', meaning, iface, ctx)];

  const calls: HookCall[] = [];
  for (const [prefix, action] of [['LEASES6', 'add'], ['DELETED_LEASES6', 'del']] as const) {
    const size = env[`${prefix}_SIZE`] ?? '0';
    if (!/^[0-9]{1,3}$/.test(size) || Number(size) > MAX_COMMITTED) return [{ kind: 'invalid', reason: `${prefix}_SIZE ${JSON.stringify(size.slice(0, 16))} is not a count up to ${MAX_COMMITTED}` }];
    for (let i = 0; i < Number(size); i++) calls.push(leaseOf(env, `${prefix}_AT${i}`, action, iface, ctx));
  }
  return calls.length > 0 ? calls : [{ kind: 'ignored', reason: 'leases6_committed with no lease' }];
}

function leaseOf(env: Env, prefix: string, action: LeaseAction, iface: string | null, ctx: HookCallContext): HookCall {
  const get = (field: string) => optional(env[`${prefix}_${field}`]);
  const type = get('TYPE');
  if (type === 'IA_PD') return { kind: 'ignored', reason: 'a delegated prefix (IA_PD), not an address' };
  if (type !== 'IA_NA' && type !== 'IA_TA') return { kind: 'invalid', reason: `${prefix}_TYPE ${JSON.stringify((type ?? '').slice(0, 16))} is not IA_NA, IA_TA or IA_PD` };
  const iaid = get('IAID') ?? '';
  return leaseEventOf({
    eventId: ctx.newId(),
    server: ctx.server,
    role: ctx.role,
    action,
    duid: get('DUID') ?? '',
    // dnsmasq writes a temporary address's IAID as T<n>: the same event for the same lease.
    iaid: type === 'IA_TA' ? `T${iaid}` : iaid,
    address: get('ADDRESS') ?? '',
    hostname: get('HOSTNAME') ?? null,
    mac: get('HWADDR') ?? null,
    interface: iface,
    expiresAt: expiry(get('CLTT'), get('VALID_LIFETIME')),
    seenAt: ctx.now.toISOString(),
  });
}

/** cltt + valid lifetime; null for an infinite lease or when either is missing or not a number. */
function expiry(cltt: string | undefined, valid: string | undefined): string | null {
  if (!cltt || !valid || !/^[0-9]{1,12}$/.test(cltt) || !/^[0-9]{1,10}$/.test(valid)) return null;
  if (Number(valid) === INFINITE) return null;
  return new Date((Number(cltt) + Number(valid)) * 1000).toISOString();
}

function optional(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
