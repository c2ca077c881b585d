import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../store/memory-store.js';
import type { ClientRecord } from '../store/types.js';
import { Retention } from './retention.js';

describe('Retention', () => {
  it('forgets clients gone for longer than gone_days, in batches, and keeps the rest', async () => {
    let now = Date.parse('2026-01-10T00:00:00Z');
    const store = new MemoryStore({ prefix: 'fd00:3::/64' });
    const at = (days: number) => new Date(now - days * 86_400_000).toISOString();
    const client = (id: string, state: ClientRecord['state'], updatedAt: string): ClientRecord => ({
      id, server: 'devnet', role: 'device', duid: `00:03:${id}`, iaid: '1', address: 'fd00:1::1', hostname: null, mac: null, state, desired: 'removed',
      stateReason: 'test', expiresAt: null, profile: null, ttlExpiresAt: null, cooldownUntil: null, firstSeen: at(30), lastSeen: updatedAt, updatedAt,
    });
    // 2,500 gone for 8 days (more than a batch), 10 gone for 6, and live ones of any age.
    for (let i = 0; i < 2500; i++) await store.putClient(client(`old${i}`, 'gone', at(8)));
    for (let i = 0; i < 10; i++) await store.putClient(client(`new${i}`, 'gone', at(6)));
    await store.putClient(client('ready', 'ready', at(20)));
    await store.putClient(client('failed', 'failed', at(20)));
    const retention = new Retention({ store, clock: { now: () => new Date(now) }, log: pino({ level: 'silent' }), goneDays: 7 });
    expect(await retention.pruneOnce()).toBe(2500);
    expect(await store.clientsPerState()).toMatchObject({ gone: 10, ready: 1, failed: 1 });
    expect(await retention.pruneOnce()).toBe(0);
    now += 2 * 86_400_000;
    expect(await retention.pruneOnce()).toBe(10);
    expect((await store.listClients()).map((c) => c.id).sort()).toEqual(['failed', 'ready']);
  });
});
