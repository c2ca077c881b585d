import type { Context } from 'hono';
import { isIPv4, isIPv6 } from 'node:net';
import type { WhoamiView } from '@unionize/protocol';
import type { Store } from '../store/store.js';
import type { ClientRecord } from '../store/types.js';


/**
 * The request's source address, from the socket (@hono/node-server hands the
 * Node request in as `c.env.incoming`). Never from a header: a header is the
 * caller's to choose. IPv4-mapped forms (`::ffff:192.0.2.1`) become IPv4, and
 * a zone (`%eth0`) is dropped.
 */
export function sourceAddressOf(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: unknown } } } | undefined;
  const raw = env?.incoming?.socket?.remoteAddress;
  return typeof raw === 'string' ? normaliseAddress(raw) : undefined;
}

export function normaliseAddress(raw: string): string | undefined {
  const address = raw.split('%')[0]!.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1];
  if (isIPv4(address) || isIPv6(address)) return address;
  return undefined;
}

/**
 * What GET /v1/whoami shows a caller, its own client and container and nothing else:
 * the client leasing `source` now (not released or gone); when several
 * records share the address (a lease moved between devices), the one seen last.
 */
export async function findCaller(store: Store, source: string): Promise<WhoamiView | undefined> {
  let best: ClientRecord | undefined;
  // By index: this path needs no signature, so it must not read every client.
  for (const client of await store.clientsWithAddress(source)) {
    if (client.desired !== 'running' || client.state === 'gone') continue;
    if (!best || client.lastSeen > best.lastSeen) best = client;
  }
  if (!best) return undefined;
  const instance = await store.getInstance(best.id);
  return {
    client: { address: best.address, hostname: best.hostname, state: best.state, expiresAt: best.expiresAt },
    container: instance ? { name: instance.containerName, address: instance.address } : null,
  };
}
