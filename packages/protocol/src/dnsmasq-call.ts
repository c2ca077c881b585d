import { leaseEventSchema, type LeaseEvent, type ServerRole } from './lease-event.js';

/** What the hook should do with one dnsmasq call: send its event, pass over a call it does not use, or keep a malformed one for an operator. */
export type HookCall =
  | { kind: 'event'; event: LeaseEvent; warnings: string[] }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; reason: string };

export interface HookCallContext {
  server: string;
  role: ServerRole;
  now: Date;
  newId: () => string;
}

const IGNORED_ACTIONS = new Set(['init', 'tftp', 'arp-add', 'arp-del', 'relay-snoop']);

/**
 * Turn one dnsmasq `--dhcp-script` call into a lease event.
 *
 * dnsmasq(8): for DHCPv6 the script is called as `ACTION DUID ADDRESS [HOSTNAME]`
 * with DNSMASQ_IAID set; DHCPv4 calls (`ACTION MAC IPv4 [HOSTNAME]`) carry no IAID.
 * `argv` is the script's arguments without node and the script path.
 */
export function parseHookCall(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  ctx: HookCallContext,
): HookCall {
  const [action, duid, address, rawHostname] = argv;
  if (!action) return { kind: 'ignored', reason: 'no action argument' };
  if (IGNORED_ACTIONS.has(action)) return { kind: 'ignored', reason: `action ${action} is not used` };
  if (action !== 'add' && action !== 'old' && action !== 'del') {
    return { kind: 'ignored', reason: `unknown action ${JSON.stringify(action.slice(0, 32))}` };
  }
  const iaid = env.DNSMASQ_IAID;
  if (iaid === undefined || iaid === '') return { kind: 'ignored', reason: 'DHCPv4 call (no DNSMASQ_IAID)' };

  const hostname = optional(rawHostname);
  const mac = normaliseMac(optional(env.DNSMASQ_MAC));
  return leaseEventOf({
    eventId: ctx.newId(),
    server: ctx.server,
    role: ctx.role,
    action,
    duid: duid ?? '',
    iaid,
    address: address ?? '',
    hostname: hostname ?? null,
    mac: mac ?? null,
    interface: optional(env.DNSMASQ_INTERFACE) ?? null,
    expiresAt: leaseExpiry(env, ctx.now),
    seenAt: ctx.now.toISOString(),
  });
}

/** A lease event's fields as a DHCP server gave them, before validation. */
export type LeaseCandidate = { [K in keyof LeaseEvent]: K extends 'hostname' | 'mac' | 'interface' | 'expiresAt' ? string | null : string };

/**
 * Validate a lease event at the edge, whichever DHCP server it came from. A
 * device may send any hostname: a bad hostname, MAC or interface is dropped
 * with a warning and must not cost it its container; anything else invalid
 * makes the whole call invalid.
 */
export function leaseEventOf(candidate: LeaseCandidate): HookCall {
  const warnings: string[] = [];
  const fields = { ...candidate };
  for (const field of ['hostname', 'mac', 'interface'] as const) {
    const check = leaseEventSchema.shape[field].safeParse(fields[field]);
    if (!check.success) {
      warnings.push(`${field} dropped: ${check.error.issues[0]?.message ?? 'invalid'}`);
      fields[field] = null;
    }
  }
  const parsed = leaseEventSchema.safeParse(fields);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { kind: 'invalid', reason: `invalid ${issue?.path.join('.') ?? 'event'}: ${issue?.message ?? ''}` };
  }
  return { kind: 'event', event: parsed.data, warnings };
}

function optional(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** dnsmasq may prefix the hardware type ("1:" for Ethernet) in some builds; keep the six octets. */
function normaliseMac(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(':');
  if (parts.length === 7 && /^0?1$/.test(parts[0] ?? '')) return parts.slice(1).join(':');
  return value;
}

/**
 * dnsmasq sets DNSMASQ_LEASE_EXPIRES (epoch seconds) or, when built with
 * HAVE_BROKEN_RTC, DNSMASQ_LEASE_LENGTH (seconds). 0 means an infinite lease.
 */
function leaseExpiry(env: Readonly<Record<string, string | undefined>>, now: Date): string | null {
  const expires = env.DNSMASQ_LEASE_EXPIRES;
  if (expires && /^[0-9]{1,12}$/.test(expires)) {
    const seconds = Number(expires);
    return seconds === 0 ? null : new Date(seconds * 1000).toISOString();
  }
  const length = env.DNSMASQ_LEASE_LENGTH;
  if (length && /^[0-9]{1,12}$/.test(length)) {
    const seconds = Number(length);
    return seconds === 0 ? null : new Date(now.getTime() + seconds * 1000).toISOString();
  }
  return null;
}
