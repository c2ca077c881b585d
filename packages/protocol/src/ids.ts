import { createHash, hash } from 'node:crypto';

/**
 * Identifiers derived from the client key (DHCP server, DUID, IAID).
 * Derived by hashing, so nothing the device chose reaches a container name,
 * a label value used as a name, or an interface name.
 */
export function clientIdOf(server: string, duid: string, iaid: string): string {
  // The first 10 bytes in hex: the same as .digest('hex').slice(0, 20), without keeping the whole digest's string behind the id.
  // One-shot hash(): createHash() looks the digest up in OpenSSL 3 for each object; this runs for every lease event.
  return hash('sha256', `${server}\0${duid}\0${iaid}`, 'buffer').toString('hex', 0, 10);
}

/** Docker container name for a client: `dev-` and 12 hex characters of its id. */
export function containerNameOf(clientId: string): string {
  return `dev-${clientId.slice(0, 12)}`;
}

/**
 * A locally administered, unicast MAC (first octet 0x02) derived from the
 * client id. Never 0x22 (") or 0x5c (\\) in the last four octets: ISC dhclient
 * writes the IAID made of them unescaped into its lease file and cannot read
 * it back (seen with dhcp addressing), so the lease could not be released.
 */
export function macOf(clientId: string): string {
  const bytes = createHash('sha256').update(`mac\0${clientId}`).digest().subarray(0, 5);
  const safe = Array.from(bytes, (b) => (b === 0x22 || b === 0x5c ? b + 1 : b));
  return ['02', ...safe.map((b) => b.toString(16).padStart(2, '0'))].join(':');
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
  profile: 'io.unionize.profile',
} as const;
