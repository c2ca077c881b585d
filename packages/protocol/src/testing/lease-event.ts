import { randomUUID } from 'node:crypto';
import type { LeaseEvent } from '../lease-event.js';

/**
 * For tests: a valid lease event, dnsmasq's `add` of one laptop on devnet
 * (a fresh event id, seen now), with the test's own fields over it.
 */
export function leaseEventFixture(overrides: Partial<LeaseEvent> = {}): LeaseEvent {
  return {
    eventId: randomUUID(),
    server: 'devnet',
    role: 'device',
    action: 'add',
    duid: '00:03:00:01:02:aa:bb:cc:dd:01',
    iaid: '1',
    address: 'fd00:1::1000',
    hostname: 'laptop',
    mac: '02:aa:bb:cc:dd:01',
    interface: 'brdev',
    expiresAt: null,
    seenAt: new Date().toISOString(),
    ...overrides,
  };
}
