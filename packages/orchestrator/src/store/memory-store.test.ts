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

  it('forgets the applied events of a burst as they are applied, not at the next event after it', async () => {
    const store = new MemoryStore({ maxEvents: 100 });
    const burst: string[] = [];
    for (let i = 0; i < 1000; i++) burst.push(await append(store, false));
    expect(await store.recentEvents(5000)).toHaveLength(1000);
    for (const eventId of burst) await store.markEventApplied({ eventId, appliedAt: 't', outcome: 'provisioned', outcomeKind: 'provisioned' });
    const kept = (await store.recentEvents(5000)).map((e) => e.eventId);
    expect(kept.length).toBeLessThanOrEqual(111);
    expect(kept.slice(0, 100)).toEqual(burst.slice(-100).reverse());
  });

  it('answers as before once compactMemory rebuilt its maps after a burst left it a third of its clients', async () => {
    const store = new MemoryStore({ prefix: 'fd00:3::/64' });
    const at = '2026-01-01T00:00:00.000Z';
    const id = (i: number) => `c${String(i).padStart(5, '0')}`;
    const addresses = new Map<string, string>();
    for (let i = 0; i < 6000; i++) {
      await store.putClient({
        id: id(i), server: 'devnet', role: 'device', duid: `00:01:${i}`, iaid: '1', address: `fd00:1::${i.toString(16)}`, hostname: null, mac: null, state: 'ready',
        desired: 'running', stateReason: 'r', expiresAt: null, profile: null, ttlExpiresAt: null, cooldownUntil: null, firstSeen: at, lastSeen: at, updatedAt: at,
      });
      addresses.set(id(i), (await store.allocateAddress(id(i)))!);
      await store.putInstance({ clientId: id(i), agent: 'dock1', containerName: `u-${i}`, containerId: 'x', address: `${addresses.get(id(i))}/64`, mac: `0a:00:00:00:${i >> 8}:${i & 255}`, image: 'i', createdAt: at });
      await store.addTransition({ clientId: id(i), from: 'pending', to: 'ready', reason: `up ${i}`, at });
    }
    for (let i = 2000; i < 6000; i++) {
      await store.deleteInstance(id(i));
      await store.releaseAddress(id(i));
      await store.putClient({ ...(await store.getClient(id(i)))!, state: 'gone', desired: 'removed' });
    }
    await store.compactMemory();
    expect(await store.countInstances()).toBe(2000);
    expect(await store.clientsPerState()).toMatchObject({ ready: 2000, gone: 4000 });
    for (const i of [0, 999, 1999]) {
      expect(await store.deviceClients('devnet', `00:01:${i}`)).toMatchObject([{ id: id(i) }]);
      expect(await store.clientsWithAddress(`fd00:1::${i.toString(16)}`)).toMatchObject([{ id: id(i) }]);
      expect(await store.getInstance(id(i))).toMatchObject({ containerName: `u-${i}` });
      expect(await store.allocateAddress(id(i))).toBe(addresses.get(id(i)));
      expect(await store.listTransitions(id(i), 5)).toMatchObject([{ reason: `up ${i}` }]);
    }
    expect(await store.getClient(id(5999))).toMatchObject({ state: 'gone' });
    expect(await store.listTransitions(id(5999), 5)).toMatchObject([{ reason: 'up 5999' }]);
    // The addresses of those gone are free again, those of the live are not.
    expect(await store.claimAddress('new', addresses.get(id(0))!)).toBe(false);
    expect(await store.claimAddress('new', addresses.get(id(5999))!)).toBe(true);
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
