import { isIPv6 } from 'node:net';
import { z } from 'zod';

/**
 * One dnsmasq lease-script call, as delivered by the hook to the orchestrator.
 * Every field but `eventId`, `server`, `role` and `seenAt` comes from the network
 * (the device chose its DUID, IAID, hostname): validate strictly, never trust.
 */

/** dnsmasq actions we act on (dnsmasq(8), --dhcp-script). */
export const LEASE_ACTIONS = ['add', 'old', 'del'] as const;
export type LeaseAction = (typeof LEASE_ACTIONS)[number];

export const SERVER_ROLES = ['device', 'instance'] as const;
export type ServerRole = (typeof SERVER_ROLES)[number];

/** A DUID as dnsmasq prints it: 1 to 130 bytes in hex, colon-separated (RFC 8415 §11.1). */
export const duidSchema = z
  .string()
  .max(130 * 3)
  .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){1,129}$/i, 'DUID must be colon-separated hex bytes')
  .transform((s) => s.toLowerCase());

/** IAID: a 32-bit number; dnsmasq prefixes "T" for temporary (IA_TA) addresses. */
export const iaidSchema = z
  .string()
  .regex(/^T?(0|[1-9][0-9]{0,9})$/, 'IAID must be a decimal 32-bit number, optionally prefixed by T')
  .refine((s) => Number(s.replace(/^T/, '')) <= 0xffffffff, 'IAID must fit in 32 bits');

/** An IA_TA's IAID (dnsmasq writes it `T` + number): a temporary address, never a container of its own. */
export function isTemporaryIaid(iaid: string): boolean {
  return iaid.startsWith('T');
}

export const ipv6Schema = z
  .string()
  .max(45)
  .refine((s) => isIPv6(s), 'must be an IPv6 address')
  .transform((s) => s.toLowerCase());

/** A unicast Ethernet MAC, lower case, colon-separated. */
export const macSchema = z
  .string()
  .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'MAC must be six colon-separated hex bytes')
  .transform((s) => s.toLowerCase());

/** RFC 1123 host name (labels of letters, digits and inner hyphens), at most 253 characters. */
export const hostnameSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(
    /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$/,
    'hostname must be an RFC 1123 name',
  );

/** Interface names as Linux allows them (IFNAMSIZ 16 incl. NUL), restricted to a safe charset. */
export const interfaceSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'interface name is not valid');

/** Names we make ourselves (servers, agents): short, safe in labels, paths and logs. */
export const nameSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'name must be [a-z0-9_-], at most 63');

export const leaseEventSchema = z
  .object({
    eventId: z.string().uuid(),
    server: nameSchema,
    role: z.enum(SERVER_ROLES),
    action: z.enum(LEASE_ACTIONS),
    duid: duidSchema,
    iaid: iaidSchema,
    address: ipv6Schema,
    hostname: hostnameSchema.nullable(),
    mac: macSchema.nullable(),
    interface: interfaceSchema.nullable(),
    /** ISO time the lease ends, null for an infinite lease or when dnsmasq did not say. */
    expiresAt: z.string().datetime().nullable(),
    /** ISO time the hook was called. */
    seenAt: z.string().datetime(),
  })
  .strict();

export type LeaseEvent = z.infer<typeof leaseEventSchema>;

export const LEASE_EVENTS_PATH = '/v1/lease-events';
/** Sent by the hook's flusher with each lease event: the calls still waiting behind it in its spool (informational). */
export const HOOK_SPOOL_DEPTH_HEADER = 'x-hook-spool-depth';
/** Sent with it: the events its spool holds set aside in rejected/ (refused for good, or not a call). */
export const HOOK_REJECTED_HEADER = 'x-hook-rejected';
