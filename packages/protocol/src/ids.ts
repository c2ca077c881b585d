import { createHash } from 'node:crypto';

/**
 * Identifiers derived from the client key (DHCP server, DUID, IAID).
 * Derived by hashing, so nothing the device chose reaches a container name,
 * a label value used as a name, or an interface name.
 */
export function clientIdOf(server: string, duid: string, iaid: string): string {
  return createHash('sha256').update(`${server}\0${duid}\0${iaid}`).digest('hex').slice(0, 20);
}

/** Docker container name for a client: `dev-` and 12 hex characters of its id. */
export function containerNameOf(clientId: string): string {
  return `dev-${clientId.slice(0, 12)}`;
}

/** A locally administered, unicast MAC (first octet 0x02) derived from the client id. */
export function macOf(clientId: string): string {
  const bytes = createHash('sha256').update(`mac\0${clientId}`).digest().subarray(0, 5);
  return ['02', ...Array.from(bytes, (b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Docker labels that tie a container to its client. */
export const LABELS = {
  managed: 'io.unionize.managed',
  clientId: 'io.unionize.client-id',
  server: 'io.unionize.server',
  duid: 'io.unionize.duid',
  iaid: 'io.unionize.iaid',
  address: 'io.unionize.address',
  deviceAddress: 'io.unionize.device-address',
} as const;
