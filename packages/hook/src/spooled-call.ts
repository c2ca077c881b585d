import type { LeaseEvent } from '@unionize/protocol/lease-event';
import { decodeSpooledCall } from '@unionize/protocol/spooled-call';
import { dnsmasqSource } from './lease-source.js';

export type SpooledCallEvent =
  | { kind: 'event'; event: LeaseEvent; warnings: string[] }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; reason: string };

/** Which dnsmasq the calls come from: the flusher's [dhcp] server and role. */
export type DhcpServer = Pick<LeaseEvent, 'server' | 'role'>;

/** Decode a `.call` file (protocol's spooled-call.ts) and turn it into a lease event of `dhcp`. */
export function eventOfSpooledCall(bytes: Buffer, dhcp: DhcpServer): SpooledCallEvent {
  const decoded = decodeSpooledCall(bytes);
  if (!decoded.ok) return { kind: 'invalid', reason: decoded.reason };
  const { call } = decoded;
  // A valid dnsmasq call we do not use (DHCPv4, an unused action) is ignored; a malformed one is kept for an operator.
  const [parsed] = dnsmasqSource.eventsOf(call.argv, call.env, { server: dhcp.server, role: dhcp.role, now: call.seenAt, newId: () => call.eventId });
  return parsed!;
}
