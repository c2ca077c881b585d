import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DHCP_ADDRESS, type LeaseEvent } from '@unionize/protocol';
import { describeStore } from './store.contract.js';
import { MEMORY_TRANSITIONS, MemoryStore } from './memory-store.js';

describeStore('MemoryStore', (options) => new MemoryStore({ prefix: 'fd00:3::/64', ...options }));

describe('MemoryStore retention', () => {
  const event = (): LeaseEvent => ({
    eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: '00:03:00:01:02:aa:bb:cc:dd:01', iaid: '1',
    address: 'fd00:1::1000', hostname: null, mac: null, interface: null, expiresAt: null, seenAt: '2026-01-01T00:00:00.000Z',
  });
  const append = async (store: MemoryStore, applied: boolean) => {
    const e = event();
    await store.appendEvent({ eventId: e.eventId, clientId: 'c1', receivedAt: 't', event: e, appliedAt: null, outcome: null, outcomeKind: null });
    if (applied) await store.markEventApplied({ eventId: e.eventId, appliedAt: 't', outcome: 'provisioned', outcomeKind: 'provisioned' });
    return e.eventId;
  };

  it('journals the newest maxEvents events (a tenth more before it prunes), never forgetting an unapplied one', async () => {
    const store = new MemoryStore({ maxEvents: 100 });
    const unapplied = await append(store, false);
    const ids: string[] = [];
    for (let i = 0; i < 250; i++) ids.push(await append(store, true));
    const kept = (await store.recentEvents(1000)).map((e) => e.eventId);
    expect(kept.length).toBeGreaterThanOrEqual(100);
    expect(kept.length).toBeLessThanOrEqual(111);
    expect(kept.slice(0, 100)).toEqual(ids.slice(-100).reverse());
    expect(kept.at(-1)).toBe(unapplied);
    expect((await store.unappliedEvents()).map((e) => e.eventId)).toEqual([unapplied]);
  });

  it('refuses a journal of no events', () => {
    expect(() => new MemoryStore({ maxEvents: 0 })).toThrow(/maxEvents/);
  });

  it(`keeps each client's last ${MEMORY_TRANSITIONS} transitions`, async () => {
    const store = new MemoryStore({});
    for (let i = 0; i < MEMORY_TRANSITIONS + 20; i++) await store.addTransition({ clientId: 'c1', from: 'pending', to: 'ready', reason: `r${i}`, at: 't' });
    const kept = await store.listTransitions('c1', 1000);
    expect(kept).toHaveLength(MEMORY_TRANSITIONS);
    expect(kept[0]!.reason).toBe(`r${MEMORY_TRANSITIONS + 19}`);
  });

  it('a gone client (kept packed) reads back whole with its transitions, takes more, and leases again with them', async () => {
    const store = new MemoryStore({});
    const at = (s: number) => `2026-01-01T00:00:${String(s).padStart(2, '0')}.000Z`;
    const ready = {
      id: 'c1', server: 'devnet', role: 'device' as const, duid: '00:01', iaid: '1', address: 'fd00:1::10', hostname: 'h"\\ \u00e9', mac: '02:aa:00:00:00:01', state: 'ready' as const,
      desired: 'running' as const, stateReason: 'up', expiresAt: at(59), profile: 'visitor', ttlExpiresAt: null, cooldownUntil: at(30), firstSeen: at(1), lastSeen: at(2), updatedAt: at(3),
    };
    await store.putClient(ready);
    for (let i = 0; i < 3; i++) await store.addTransition({ clientId: 'c1', from: 'pending', to: 'ready', reason: `r${i}`, at: at(i) });
    const gone = { ...ready, state: 'gone' as const, desired: 'absent' as const, stateReason: 'lease released (del)', updatedAt: at(4) };
    await store.putClient(gone);
    await store.addTransition({ clientId: 'c1', from: 'deprovisioning', to: 'gone', reason: 'lease released (del)', at: at(4) });
    expect(await store.getClient('c1')).toEqual(gone);
    expect(await store.listClientsPage(null, 10)).toEqual([gone]);
    expect(await store.deviceClients('devnet', '00:01')).toEqual([gone]);
    expect((await store.listTransitions('c1', 10)).map((t) => [t.clientId, t.reason, t.at])).toEqual([
      ['c1', 'lease released (del)', at(4)], ['c1', 'r2', at(2)], ['c1', 'r1', at(1)], ['c1', 'r0', at(0)],
    ]);
    expect(await store.clientsPerState()).toMatchObject({ gone: 1, ready: 0 });
    // It leases again: a record again, its transitions kept.
    const again = { ...ready, updatedAt: at(5) };
    await store.putClient(again);
    await store.addTransition({ clientId: 'c1', from: 'gone', to: 'pending', reason: 'new lease', at: at(5) });
    expect(await store.getClient('c1')).toEqual(again);
    expect((await store.listTransitions('c1', 2)).map((t) => t.reason)).toEqual(['new lease', 'lease released (del)']);
    // Pruned by the time it went (read from the packed string), not before.
    await store.putClient(gone);
    expect(await store.pruneGoneClients(at(4), 10)).toBe(0);
    expect(await store.pruneGoneClients(at(5), 10)).toBe(1);
    expect(await store.getClient('c1')).toBeUndefined();
    expect(await store.listTransitions('c1', 10)).toEqual([]);
  });

  it('counts an instance recorded before its client by MAC and /64 once the client is', async () => {
    const store = new MemoryStore({});
    const at = '2026-01-01T00:00:00.000Z';
    await store.putInstance({ clientId: 'c1', agent: 'dock1', containerName: 'dev-1', containerId: 'x', address: DHCP_ADDRESS, mac: '02:00:00:00:00:01', image: 'i', createdAt: at });
    expect([await store.countInstances(), await store.countInstances({ mac: '02:aa:00:00:00:01' }), await store.countInstances({ prefix64: 'fd00:1:0:0' })]).toEqual([1, 0, 0]);
    await store.putClient({
      id: 'c1', server: 'devnet', role: 'device', duid: '00:01', iaid: '1', address: 'fd00:1::10', hostname: null, mac: '02:aa:00:00:00:01', state: 'ready',
      desired: 'running', stateReason: 'r', expiresAt: null, profile: null, ttlExpiresAt: null, cooldownUntil: null, firstSeen: at, lastSeen: at, updatedAt: at,
    });
    expect([await store.countInstances(), await store.countInstances({ mac: '02:aa:00:00:00:01' }), await store.countInstances({ prefix64: 'fd00:1:0:0' })]).toEqual([1, 1, 1]);
    await store.deleteInstance('c1');
    expect([await store.countInstances(), await store.countInstances({ mac: '02:aa:00:00:00:01' }), await store.countInstances({ prefix64: 'fd00:1:0:0' })]).toEqual([0, 0, 0]);
  });
});
