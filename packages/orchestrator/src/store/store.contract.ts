import { describe, expect, it } from 'vitest';
import { leaseEventFixture } from '@unionize/protocol/testing/lease-event';
import { DHCP_ADDRESS, type LeaseEvent } from '@unionize/protocol';
import { FIRST_POOL_OFFSET, LAST_POOL_OFFSET, MAX_POOL_DRAWS, Prefix64, type DrawOffset } from './ipv6.js';
import type { Store } from './store.js';
import type { AppliedMark, ClientRecord, EventRecord } from './types.js';

/**
 * The behaviour every Store must have; run by memory-store.test.ts,
 * sqlite-store.test.ts and postgres/postgres-store.test.ts. `open` makes a store on the pool fd00:3::/64, with
 * `drawOffset` when given (the random draw otherwise).
 */
export function describeStore(name: string, open: (options?: { drawOffset?: DrawOffset }) => Store | Promise<Store>): void {
  const event = (over: Partial<LeaseEvent> = {}): LeaseEvent =>
    leaseEventFixture({ hostname: null, mac: null, interface: null, seenAt: '2026-01-01T00:00:00.000Z', ...over });

  const record = (e: LeaseEvent, clientId = 'c1'): EventRecord => ({ eventId: e.eventId, clientId, receivedAt: '2026-01-01T00:00:00.000Z', event: e, appliedAt: null, outcome: null, outcomeKind: null });
  const applied = (eventId: string): AppliedMark => ({ eventId, appliedAt: 'x', outcome: 'deprovisioned', outcomeKind: 'deprovisioned' });
  const client = (id: string, over: Partial<ClientRecord> = {}): ClientRecord => ({
    id,
    server: 'devnet',
    role: 'device',
    duid: `00:03:00:01:${id.padStart(2, '0').slice(-2)}:00`,
    iaid: '1',
    address: 'fd00:1::1000',
    hostname: null,
    mac: null,
    state: 'pending',
    desired: 'running',
    stateReason: 'test',
    expiresAt: null,
    profile: null,
    ttlExpiresAt: null,
    cooldownUntil: null,
    firstSeen: '2026-01-01T00:00:00.000Z',
    lastSeen: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...over,
  });

  describe(`${name}: the Store contract`, () => {
    it('journals events once, in order, and tracks which were applied', async () => {
      const store = await open();
      const a = event();
      const b = event({ action: 'del' });
      expect(await store.appendEvent(record(a))).toEqual({ duplicate: false });
      expect(await store.appendEvent(record(a))).toEqual({ duplicate: true });
      await store.appendEvent(record(b));
      expect((await store.unappliedEvents()).map((e) => e.eventId)).toEqual([a.eventId, b.eventId]);
      expect((await store.unappliedEvents())[0]!.event).toEqual(a);
      await store.markEventApplied({ eventId: a.eventId, appliedAt: '2026-01-01T00:00:01.000Z', outcome: 'provisioned', outcomeKind: 'provisioned' });
      expect((await store.unappliedEvents()).map((e) => e.eventId)).toEqual([b.eventId]);
      expect((await store.recentEvents(10)).map((e) => [e.eventId, e.outcome, e.outcomeKind])).toEqual([[b.eventId, null, null], [a.eventId, 'provisioned', 'provisioned']]);
      expect(await store.quarantinedRows()).toBe(0);
      await store.close();
    });

    it('journals a batch in one writeJournal: in order, duplicates (known, or earlier in the batch) written once, marks applied', async () => {
      const store = await open();
      const [a, b, c] = [event(), event(), event()];
      await store.appendEvent(record(a));
      expect(await store.writeJournal([record(b), record(a), record(c), record(b)], [{ eventId: a.eventId, appliedAt: '2026-01-01T00:00:01.000Z', outcome: 'refused (quota: full)', outcomeKind: 'refused' }])).toEqual([
        { duplicate: false },
        { duplicate: true },
        { duplicate: false },
        { duplicate: true },
      ]);
      await store.syncJournal();
      expect((await store.unappliedEvents()).map((e) => e.eventId)).toEqual([b.eventId, c.eventId]);
      expect((await store.recentEvents(10)).map((e) => [e.eventId, e.outcome, e.outcomeKind])).toEqual([[c.eventId, null, null], [b.eventId, null, null], [a.eventId, 'refused (quota: full)', 'refused']]);
      expect(await store.writeJournal([], [{ eventId: b.eventId, appliedAt: '2026-01-01T00:00:02.000Z', outcome: 'failed: boom', outcomeKind: 'failed' }])).toEqual([]);
      expect((await store.unappliedEvents()).map((e) => e.eventId)).toEqual([c.eventId]);
      expect((await store.recentEvents(10)).find((e) => e.eventId === b.eventId)).toMatchObject({ outcome: 'failed: boom', outcomeKind: 'failed' });
      expect(await store.writeJournal([], [])).toEqual([]);
      await store.close();
    });

    it('prunes only applied events beyond the newest kept', async () => {
      const store = await open();
      const ids = Array.from({ length: 5 }, () => event());
      for (const e of ids) await store.appendEvent(record(e));
      for (const e of ids.slice(0, 4)) await store.markEventApplied(applied(e.eventId));
      expect(await store.pruneEvents(2)).toBe(3);
      expect((await store.recentEvents(10)).map((e) => e.eventId)).toEqual([ids[4]!.eventId, ids[3]!.eventId]);
      await store.close();
    });

    it('keeps clients, their transitions and instances', async () => {
      const store = await open();
      await store.putClient(client('c1'));
      await store.putClient(client('c1', { state: 'ready', hostname: 'h', profile: 'small', ttlExpiresAt: 't9', cooldownUntil: 't10' }));
      await store.putClient(client('c2'));
      expect(await store.getClient('c1')).toMatchObject({ state: 'ready', hostname: 'h', profile: 'small', ttlExpiresAt: 't9', cooldownUntil: 't10' });
      expect((await store.listClients()).map((c) => c.id).sort()).toEqual(['c1', 'c2']);
      await store.putClient(client('c0'));
      expect((await store.listClientsPage(null, 2)).map((c) => c.id)).toEqual(['c0', 'c1']);
      expect((await store.listClientsPage('c1', 2)).map((c) => c.id)).toEqual(['c2']);
      expect((await store.listClientsPage('c0', 1))[0]).toMatchObject({ id: 'c1', hostname: 'h' });
      await store.addTransition({ clientId: 'c1', from: 'pending', to: 'provisioning', reason: 'r1', at: 't1' });
      await store.addTransition({ clientId: 'c1', from: 'provisioning', to: 'ready', reason: 'r2', at: 't2' });
      expect((await store.listTransitions('c1', 10)).map((t) => t.to)).toEqual(['ready', 'provisioning']);
      const instance = { clientId: 'c1', agent: 'dock1', containerName: 'dev-1', containerId: 'abc', address: 'fd00:3::100/64', mac: '02:00:00:00:00:01', image: 'img', createdAt: 't' };
      await store.putInstance(instance);
      await store.putInstance({ ...instance, containerId: 'def' });
      expect(await store.getInstance('c1')).toEqual({ ...instance, containerId: 'def' });
      expect(await store.listInstances()).toHaveLength(1);
      await store.deleteInstance('c1');
      expect(await store.getInstance('c1')).toBeUndefined();
      await store.close();
    });

    it('keeps agents, and finds instances by MAC', async () => {
      const store = await open();
      const agent = { name: 'dock1', url: 'https://a', healthy: true, checkedAt: 't1', unhealthySince: null, draining: false };
      await store.putAgent(agent);
      await store.putAgent({ ...agent, healthy: false, unhealthySince: 't2', draining: true });
      expect(await store.listAgents()).toEqual([{ ...agent, healthy: false, unhealthySince: 't2', draining: true }]);
      await store.putClient(client('c1'));
      await store.putInstance({ clientId: 'c1', agent: 'dock1', containerName: 'dev-1', containerId: 'x', address: DHCP_ADDRESS, mac: '02:00:00:00:00:07', image: 'i', createdAt: 't' });
      expect((await store.findInstanceByMac('02:00:00:00:00:07'))?.clientId).toBe('c1');
      expect(await store.findInstanceByMac('02:00:00:00:00:08')).toBeUndefined();
      await store.putInstance({ clientId: 'c1', agent: 'dock1', containerName: 'dev-1', containerId: 'x', address: DHCP_ADDRESS, mac: '02:00:00:00:00:09', image: 'i', createdAt: 't' });
      expect((await store.findInstanceByMac('02:00:00:00:00:09'))?.clientId).toBe('c1');
      expect(await store.findInstanceByMac('02:00:00:00:00:07')).toBeUndefined();
      await store.deleteInstance('c1');
      expect(await store.findInstanceByMac('02:00:00:00:00:09')).toBeUndefined();
      await store.close();
    });

    it('keeps share links by their token hash, and lets each be used once', async () => {
      const store = await open();
      const share = { tokenHash: 'a'.repeat(64), clientId: 'c1', filename: 'c1-live.tar.gz', sizeBytes: 1234, createdAt: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-08T00:00:00.000Z', usedAt: null };
      await store.putShare(share);
      await store.putShare({ ...share, tokenHash: 'b'.repeat(64), createdAt: '2026-01-02T00:00:00.000Z' });
      expect(await store.getShare('a'.repeat(64))).toEqual(share);
      expect(await store.getShare('c'.repeat(64))).toBeUndefined();
      expect(await store.useShare('a'.repeat(64), '2026-01-03T00:00:00.000Z')).toBe(true);
      expect(await store.useShare('a'.repeat(64), '2026-01-03T00:00:01.000Z')).toBe(false);
      expect(await store.useShare('c'.repeat(64), '2026-01-03T00:00:01.000Z')).toBe(false);
      expect((await store.getShare('a'.repeat(64)))?.usedAt).toBe('2026-01-03T00:00:00.000Z');
      expect((await store.listShares()).map((s) => s.tokenHash)).toEqual(['a'.repeat(64), 'b'.repeat(64)]);
      await store.deleteShare('a'.repeat(64));
      expect((await store.listShares()).map((s) => s.tokenHash)).toEqual(['b'.repeat(64)]);
      await store.close();
    });

    it("finds a device's clients (one per IAID) by its server and DUID, and forgets a pruned one", async () => {
      const store = await open();
      await store.putClient(client('c1', { server: 'devnet', duid: '00:01:aa', iaid: '1' }));
      await store.putClient(client('c2', { server: 'devnet', duid: '00:01:aa', iaid: '2' }));
      await store.putClient(client('c3', { server: 'devnet', duid: '00:01:bb', iaid: '1' }));
      await store.putClient(client('c4', { server: 'other', duid: '00:01:aa', iaid: '1' }));
      await store.putClient(client('c5', { server: 'devnet', duid: '00:01:aa', iaid: 'T3', state: 'gone', updatedAt: '2026-01-01T00:00:00.000Z' }));
      const ids = async (server: string, duid: string) => (await store.deviceClients(server, duid)).map((c) => c.id).sort();
      expect(await ids('devnet', '00:01:aa')).toEqual(['c1', 'c2', 'c5']);
      expect(await ids('devnet', '00:01:bb')).toEqual(['c3']);
      expect(await ids('other', '00:01:aa')).toEqual(['c4']);
      expect(await ids('devnet', '00:01:cc')).toEqual([]);
      await store.putClient(client('c2', { server: 'devnet', duid: '00:01:aa', iaid: '2', address: 'fd00:1::99' }));
      expect((await store.deviceClients('devnet', '00:01:aa')).find((c) => c.id === 'c2')?.address).toBe('fd00:1::99');
      expect(await store.pruneGoneClients('2026-02-01T00:00:00.000Z', 10)).toBe(1);
      expect(await ids('devnet', '00:01:aa')).toEqual(['c1', 'c2']);
      await store.close();
    });

    it('finds clients by their leased address however it is spelled, and follows a client to a new address', async () => {
      const store = await open();
      await store.putClient(client('c1', { address: 'fd00:1::10' }));
      await store.putClient(client('c2', { address: 'FD00:0001:0000:0000:0000:0000:0000:0010', lastSeen: 't9' }));
      await store.putClient(client('c3', { address: 'fd00:1::11' }));
      const ids = async (a: string) => (await store.clientsWithAddress(a)).map((c) => c.id).sort();
      expect(await ids('fd00:1:0::10')).toEqual(['c1', 'c2']);
      expect((await store.clientsWithAddress('fd00:1::10')).find((c) => c.id === 'c2')?.lastSeen).toBe('t9');
      await store.putClient(client('c1', { address: 'fd00:1::11' }));
      expect(await ids('fd00:1::10')).toEqual(['c2']);
      expect(await ids('fd00:1::11')).toEqual(['c1', 'c3']);
      expect(await ids('fd00:1::12')).toEqual([]);
      expect(await ids('192.0.2.1')).toEqual([]);
      expect(await ids('not an address')).toEqual([]);
      await store.close();
    });

    it('counts instances in all, per agent, per device MAC and per device /64, as clients and instances change', async () => {
      const store = await open();
      const instance = (clientId: string, agent: string) => ({
        clientId, agent, containerName: `dev-${clientId}`, containerId: 'x', address: 'fd00:3::100/64', mac: '02:00:00:00:00:01', image: 'i', createdAt: 't',
      });
      const counts = async () => ({
        all: await store.countInstances(),
        dock1: await store.countInstances({ agent: 'dock1' }),
        dock2: await store.countInstances({ agent: 'dock2' }),
        macA: await store.countInstances({ mac: '02:aa:00:00:00:01' }),
        macB: await store.countInstances({ mac: '02:bb:00:00:00:01' }),
        noMac: await store.countInstances({ mac: null }),
        net1: await store.countInstances({ prefix64: 'fd00:1:0:0' }),
        net9: await store.countInstances({ prefix64: 'fd00:9:0:0' }),
      });
      await store.putClient(client('c1', { mac: '02:aa:00:00:00:01', address: 'fd00:1::10' }));
      await store.putClient(client('c2', { mac: '02:aa:00:00:00:01', address: 'fd00:1:0:0::20' }));
      await store.putClient(client('c3', { mac: null, address: 'fd00:9::30' }));
      expect(await counts()).toEqual({ all: 0, dock1: 0, dock2: 0, macA: 0, macB: 0, noMac: 0, net1: 0, net9: 0 });
      await store.putInstance(instance('c1', 'dock1'));
      await store.putInstance(instance('c2', 'dock1'));
      await store.putInstance(instance('c3', 'dock2'));
      expect(await counts()).toEqual({ all: 3, dock1: 2, dock2: 1, macA: 2, macB: 0, noMac: 1, net1: 2, net9: 1 });
      expect(await store.instancesPerAgent()).toEqual(new Map([['dock1', 2], ['dock2', 1]]));
      // The device moved to another MAC and /64; an instance moved to another agent.
      await store.putClient(client('c2', { mac: '02:bb:00:00:00:01', address: 'fd00:9::20' }));
      await store.putInstance({ ...instance('c1', 'dock2'), containerId: 'y' });
      expect(await counts()).toEqual({ all: 3, dock1: 1, dock2: 2, macA: 1, macB: 1, noMac: 1, net1: 1, net9: 2 });
      await store.deleteInstance('c1');
      await store.deleteInstance('c1');
      expect(await counts()).toEqual({ all: 2, dock1: 1, dock2: 1, macA: 0, macB: 1, noMac: 1, net1: 0, net9: 2 });
      await store.putClient(client('c4', { mac: '02:aa:00:00:00:01', address: 'fd00:1::40' }));
      await store.putInstance(instance('c4', 'dock1'));
      expect(await counts()).toEqual({ all: 3, dock1: 2, dock2: 1, macA: 1, macB: 1, noMac: 1, net1: 1, net9: 2 });
      expect(await store.instancesPerAgent()).toEqual(new Map([['dock1', 2], ['dock2', 1]]));
      // The DHCP server no longer reports c2's MAC: it counts with the clients without one.
      await store.putClient(client('c2', { mac: null, address: 'fd00:9::20' }));
      expect(await counts()).toEqual({ all: 3, dock1: 2, dock2: 1, macA: 1, macB: 0, noMac: 2, net1: 1, net9: 2 });
      await store.close();
    });

    it('counts clients per state', async () => {
      const store = await open();
      expect(await store.clientsPerState()).toEqual({ pending: 0, provisioning: 0, ready: 0, deprovisioning: 0, gone: 0, failed: 0 });
      await store.putClient(client('c1'));
      await store.putClient(client('c2', { state: 'ready' }));
      await store.putClient(client('c3', { state: 'ready' }));
      await store.putClient(client('c1', { state: 'failed' }));
      await store.putClient(client('c3', { state: 'gone' }));
      expect(await store.clientsPerState()).toEqual({ pending: 0, provisioning: 0, ready: 1, deprovisioning: 0, gone: 1, failed: 1 });
      await store.close();
    });

    it('pages clients in id order as they come in any order', async () => {
      const store = await open();
      const ids = Array.from({ length: 40 }, (_, i) => ((i * 7919) % 97).toString(16).padStart(4, '0'));
      for (const id of ids) await store.putClient(client(id));
      for (const id of ids.slice(0, 5)) await store.putClient(client(id, { state: 'ready' }));
      const sorted = [...ids].sort();
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const page = await store.listClientsPage(after, 7);
        seen.push(...page.map((c) => c.id));
        if (page.length < 7) break;
        after = page.at(-1)!.id;
      }
      expect(seen).toEqual(sorted);
      expect((await store.listClientsPage('0000', 2)).map((c) => c.id)).toEqual(sorted.filter((id) => id > '0000').slice(0, 2));
      expect(await store.listClientsPage('zzzz', 2)).toEqual([]);
      await store.close();
    });

    it('prunes nothing among the newest kept, and never an unapplied event', async () => {
      const store = await open();
      const ids = Array.from({ length: 6 }, () => event());
      for (const e of ids) await store.appendEvent(record(e));
      for (const e of ids.slice(1)) await store.markEventApplied(applied(e.eventId));
      // Older than the newest 3: ids[0] (unapplied, stays), ids[1] and ids[2] (go).
      expect(await store.pruneEvents(3)).toBe(2);
      expect((await store.recentEvents(10)).map((e) => e.eventId)).toEqual([ids[5], ids[4], ids[3], ids[0]].map((e) => e!.eventId));
      expect((await store.recentEvents(2)).map((e) => e.eventId)).toEqual([ids[5], ids[4]].map((e) => e!.eventId));
      expect((await store.unappliedEvents()).map((e) => e.eventId)).toEqual([ids[0]!.eventId]);
      // A pruned event's id is new again; a kept one is still a duplicate.
      expect(await store.appendEvent(record(ids[0]!))).toEqual({ duplicate: true });
      expect(await store.appendEvent(record(ids[1]!))).toEqual({ duplicate: false });
      await store.close();
    });

    it('hands out copies: changing what it returned changes nothing stored', async () => {
      const store = await open();
      const e = event();
      await store.appendEvent(record(e));
      (await store.recentEvents(1))[0]!.event.address = 'changed';
      expect((await store.unappliedEvents())[0]!.event).toEqual(e);
      await store.putClient(client('c1'));
      (await store.getClient('c1'))!.state = 'ready';
      expect((await store.getClient('c1'))!.state).toBe('pending');
      expect((await store.clientsPerState()).pending).toBe(1);
      await store.close();
    });

    it('remembers DHCP servers', async () => {
      const store = await open();
      await store.touchServer({ name: 'devnet', role: 'device', firstSeen: 't1', lastSeen: 't1' });
      await store.touchServer({ name: 'devnet', role: 'device', firstSeen: 't2', lastSeen: 't2' });
      expect(await store.listServers()).toEqual([{ name: 'devnet', role: 'device', firstSeen: 't1', lastSeen: 't2' }]);
      await store.close();
    });

    it('draws each client an address at random from the pool, stable while held, never in order', async () => {
      const store = await open();
      const pool = new Prefix64('fd00:3::/64');
      const clients = Array.from({ length: 200 }, (_, i) => `c${i}`);
      const offsets = await Promise.all(clients.map(async (c) => pool.offsetOf((await store.allocateAddress(c))!)!));
      expect(new Set(offsets).size).toBe(200);
      for (const offset of offsets) {
        expect(offset).toBeGreaterThanOrEqual(FIRST_POOL_OFFSET);
        expect(offset).toBeLessThanOrEqual(LAST_POOL_OFFSET);
      }
      // Not the lowest free ones, nor any order: the offsets spread over the pool (a 2^52 range; all 200 below 2^40 has odds of 2^-2400).
      expect(offsets.some((o) => o > 2 ** 40)).toBe(true);
      expect(offsets).not.toEqual([...offsets].sort((a, b) => a - b));
      expect(await Promise.all(clients.map(async (c) => pool.offsetOf((await store.allocateAddress(c))!)!))).toEqual(offsets);
      await store.close();
    });

    it('draws again when the drawn address is held, and gives up after MAX_POOL_DRAWS collisions', async () => {
      const queue = [0x5000, 0x5000, 0x5000, 0x7000];
      const store = await open({ drawOffset: () => queue.shift() ?? 0x5000 });
      expect(await store.allocateAddress('a')).toBe('fd00:3::5000');
      expect(await store.allocateAddress('b')).toBe('fd00:3::7000');
      expect(queue).toEqual([]);
      // Every draw from here on is 0x5000, held by a: b's address stays, c gets none.
      expect(await store.allocateAddress('c')).toBeUndefined();
      await store.releaseAddress('a');
      expect(await store.allocateAddress('c')).toBe('fd00:3::5000');
      expect(await store.allocateAddress('b')).toBe('fd00:3::7000');
      await store.close();
    });

    it('counts MAX_POOL_DRAWS draws before it gives up', async () => {
      let draws = 0;
      const store = await open({ drawOffset: () => (draws++, 0x5000) });
      await store.allocateAddress('a');
      draws = 0;
      expect(await store.allocateAddress('b')).toBeUndefined();
      expect(draws).toBe(MAX_POOL_DRAWS);
      await store.close();
    });

    it('claims an address found in use, unless another client holds it', async () => {
      const store = await open({ drawOffset: () => 0x100 });
      expect(await store.claimAddress('x', 'fd00:3::105')).toBe(true);
      expect(await store.allocateAddress('x')).toBe('fd00:3::105');
      expect(await store.claimAddress('y', 'fd00:3::105')).toBe(false);
      expect(await store.claimAddress('y', 'fd00:4::1')).toBe(false);
      expect(await store.claimAddress('y', 'fd00:3::ff')).toBe(false);
      expect(await store.allocateAddress('y')).toBe('fd00:3::100');
      await store.close();
    });

    it('keeps bans by device, one per MAC or DUID, and forgets one deleted', async () => {
      const store = await open();
      const mac = { kind: 'mac' as const, value: '52:54:00:00:00:01' };
      const duid = { kind: 'duid' as const, value: '00:03:00:01:52:54:00:00:00:01' };
      await store.putBan({ ...mac, since: '2026-01-01T00:00:00.000Z', until: null });
      await store.putBan({ ...duid, since: '2026-01-02T00:00:00.000Z', until: '2026-01-03T00:00:00.000Z' });
      await store.putBan({ ...mac, since: '2026-01-01T00:00:00.000Z', until: '2026-02-01T00:00:00.000Z' });
      expect(await store.listBans()).toEqual([
        { ...mac, since: '2026-01-01T00:00:00.000Z', until: '2026-02-01T00:00:00.000Z' },
        { ...duid, since: '2026-01-02T00:00:00.000Z', until: '2026-01-03T00:00:00.000Z' },
      ]);
      expect(await store.deleteBan(mac)).toBe(true);
      expect(await store.deleteBan(mac)).toBe(false);
      expect(await store.deleteBan({ kind: 'mac', value: duid.value })).toBe(false);
      expect((await store.listBans()).map((b) => b.value)).toEqual([duid.value]);
      await store.close();
    });

    it('prunes clients gone before a time, with their transitions, and nothing else', async () => {
      const store = await open();
      const old = '2026-01-01T00:00:00.000Z';
      const recent = '2026-01-09T00:00:00.000Z';
      await store.putClient(client('g1', { state: 'gone', updatedAt: old, address: 'fd00:1::1' }));
      await store.putClient(client('g2', { state: 'gone', updatedAt: old, address: 'fd00:1::2' }));
      await store.putClient(client('g3', { state: 'gone', updatedAt: old, address: 'fd00:1::3' }));
      await store.putClient(client('g4', { state: 'gone', updatedAt: recent }));
      await store.putClient(client('r1', { state: 'ready', updatedAt: old }));
      await store.putClient(client('f1', { state: 'failed', updatedAt: old }));
      for (const id of ['g1', 'g4', 'r1']) await store.addTransition({ clientId: id, from: 'pending', to: 'gone', reason: 'r', at: old });
      const before = '2026-01-05T00:00:00.000Z';
      expect(await store.pruneGoneClients(before, 2)).toBe(2);
      expect(await store.pruneGoneClients(before, 10)).toBe(1);
      expect(await store.pruneGoneClients(before, 10)).toBe(0);
      expect((await store.listClients()).map((c) => c.id).sort()).toEqual(['f1', 'g4', 'r1']);
      expect((await store.listClientsPage(null, 10)).map((c) => c.id)).toEqual(['f1', 'g4', 'r1']);
      expect(await store.clientsPerState()).toMatchObject({ gone: 1, ready: 1, failed: 1 });
      expect(await store.listTransitions('g1', 10)).toEqual([]);
      expect(await store.listTransitions('g4', 10)).toHaveLength(1);
      expect(await store.listTransitions('r1', 10)).toHaveLength(1);
      expect(await store.clientsWithAddress('fd00:1::1')).toEqual([]);
      // A client pruned comes back as new when it leases again.
      await store.putClient(client('g1', { state: 'pending', updatedAt: recent }));
      expect(await store.getClient('g1')).toMatchObject({ state: 'pending' });
      expect((await store.listClientsPage(null, 10)).map((c) => c.id)).toEqual(['f1', 'g1', 'g4', 'r1']);
      await store.close();
    });

    it('keeps a retired client (gone, wanting nothing, no cooldown) as history: read by id, page and list, not by device or address', async () => {
      const store = await open();
      const at = (minute: number) => `2026-01-01T00:${String(minute).padStart(2, '0')}:00.000Z`;
      const retired = client('x1', { duid: '00:03:00:01:aa:01', address: 'fd00:1::51', hostname: 'old "laptop", x', state: 'gone', desired: 'removed', stateReason: 'lease released (del)', updatedAt: at(10) });
      await store.putClient(client('x1', { duid: '00:03:00:01:aa:01', address: 'fd00:1::51', hostname: 'old "laptop", x', state: 'ready' }));
      await store.addTransition({ clientId: 'x1', from: 'pending', to: 'ready', reason: 'container up', at: at(1) });
      await store.putClient(retired);
      await store.addTransition({ clientId: 'x1', from: 'ready', to: 'gone', reason: 'lease released (del)', at: at(10) });
      // Gone but still wanting a container, or cooling down after a TTL: not retired, found by device and address.
      await store.putClient(client('x2', { duid: '00:03:00:01:aa:01', iaid: '2', address: 'fd00:1::52', state: 'gone', desired: 'running', updatedAt: at(10) }));
      await store.putClient(client('x3', { duid: '00:03:00:01:aa:01', iaid: '3', address: 'fd00:1::53', state: 'gone', desired: 'removed', cooldownUntil: at(59), updatedAt: at(10) }));
      await store.putClient(client('x4', { address: 'fd00:1::54', state: 'ready', updatedAt: at(0) }));

      expect(await store.getClient('x1')).toEqual(retired);
      expect((await store.listClientsPage(null, 10)).find((c) => c.id === 'x1')).toEqual(retired);
      expect(await store.listTransitions('x1', 10)).toEqual([
        { clientId: 'x1', from: 'ready', to: 'gone', reason: 'lease released (del)', at: at(10) },
        { clientId: 'x1', from: 'pending', to: 'ready', reason: 'container up', at: at(1) },
      ]);
      const ids = (clients: ClientRecord[]) => clients.map((c) => c.id).sort();
      expect(ids(await store.listClients())).toEqual(['x1', 'x2', 'x3', 'x4']);
      expect(ids(await store.listClients({ retired: true }))).toEqual(['x1', 'x2', 'x3', 'x4']);
      expect(ids(await store.listClients({ retired: false }))).toEqual(['x2', 'x3', 'x4']);
      expect(ids(await store.listClients({ retired: { since: at(10) } }))).toEqual(['x1', 'x2', 'x3', 'x4']);
      expect(ids(await store.listClients({ retired: { since: at(11) } }))).toEqual(['x2', 'x3', 'x4']);
      expect(ids(await store.deviceClients('devnet', '00:03:00:01:aa:01'))).toEqual(['x2', 'x3']);
      expect(await store.clientsWithAddress('fd00:1::51')).toEqual([]);
      expect(ids(await store.clientsWithAddress('fd00:1::53'))).toEqual(['x3']);
      expect(await store.clientsPerState()).toMatchObject({ gone: 3, ready: 1 });

      // It comes back when its device leases again: found by device and address, its history kept.
      await store.putClient({ ...retired, state: 'pending', desired: 'running', address: 'fd00:1::61', updatedAt: at(20) });
      await store.addTransition({ clientId: 'x1', from: 'gone', to: 'pending', reason: 'leased again (add)', at: at(20) });
      expect(ids(await store.deviceClients('devnet', '00:03:00:01:aa:01'))).toEqual(['x1', 'x2', 'x3']);
      expect(ids(await store.clientsWithAddress('fd00:1::61'))).toEqual(['x1']);
      expect((await store.listTransitions('x1', 10)).map((t) => t.to)).toEqual(['pending', 'gone', 'ready']);
      expect(await store.clientsPerState()).toMatchObject({ gone: 2, pending: 1, ready: 1 });

      // Retired again, then pruned with the others gone before the cut-off.
      await store.putClient({ ...retired, updatedAt: at(30) });
      expect(ids(await store.listClients({ retired: false }))).toEqual(['x2', 'x3', 'x4']);
      expect(await store.pruneGoneClients(at(31), 10)).toBe(3);
      expect(ids(await store.listClients())).toEqual(['x4']);
      expect(await store.getClient('x1')).toBeUndefined();
      expect(await store.listTransitions('x1', 10)).toEqual([]);
      expect((await store.listClientsPage(null, 10)).map((c) => c.id)).toEqual(['x4']);
      expect(await store.clientsPerState()).toMatchObject({ gone: 0, ready: 1 });
      await store.close();
    });

    it('holds a retired client that still has an instance (its removal pending) as retired, and the same once the instance goes', async () => {
      const store = await open();
      const at = (second: number) => `2026-01-01T00:00:${String(second).padStart(2, '0')}.000Z`;
      await store.putClient(client('z1', { duid: '00:03:00:01:aa:09', address: 'fd00:1::91', state: 'ready', updatedAt: at(0) }));
      await store.putInstance({ clientId: 'z1', agent: 'dock1', containerName: 'u-z1', containerId: 'cid', address: 'fd00:3::91/64', mac: '0a:00:00:00:00:91', image: 'img', createdAt: at(1) });
      await store.putClient(client('z1', { duid: '00:03:00:01:aa:09', address: 'fd00:1::91', state: 'gone', desired: 'removed', updatedAt: at(5) }));
      const ids = (clients: ClientRecord[]) => clients.map((c) => c.id).sort();
      const expectRetired = async () => {
        expect(await store.deviceClients('devnet', '00:03:00:01:aa:09')).toEqual([]);
        expect(await store.clientsWithAddress('fd00:1::91')).toEqual([]);
        expect(ids(await store.listClients({ retired: false }))).toEqual([]);
        expect(ids(await store.listClients({ retired: { since: at(5) } }))).toEqual(['z1']);
        expect(ids(await store.listClients({ retired: { since: at(6) } }))).toEqual([]);
        expect(ids(await store.listClients())).toEqual(['z1']);
        expect(await store.getClient('z1')).toMatchObject({ state: 'gone', desired: 'removed' });
        expect(await store.clientsPerState()).toMatchObject({ gone: 1, ready: 0 });
      };
      await expectRetired();
      expect(await store.getInstance('z1')).toMatchObject({ containerName: 'u-z1' });
      expect(await store.countInstances()).toBe(1);
      await store.deleteInstance('z1');
      await expectRetired();
      expect(await store.countInstances()).toBe(0);
      // Pruned with an instance still held: both go.
      await store.putInstance({ clientId: 'z1', agent: 'dock1', containerName: 'u-z1', containerId: 'cid', address: 'fd00:3::91/64', mac: '0a:00:00:00:00:91', image: 'img', createdAt: at(7) });
      expect(await store.pruneGoneClients(at(59), 10)).toBe(1);
      expect(await store.getClient('z1')).toBeUndefined();
      expect(await store.countInstances()).toBe(0);
      expect(await store.clientsPerState()).toMatchObject({ gone: 0 });
      await store.close();
    });

    it('keeps the last transitions of a retired client that gets more, and gives it back whole when it gets a container', async () => {
      const store = await open();
      const at = (second: number) => `2026-01-01T00:00:${String(second).padStart(2, '0')}.000Z`;
      await store.putClient(client('y1', { address: 'fd00:1::71', state: 'gone', desired: 'removed', updatedAt: at(0) }));
      for (let i = 1; i <= 12; i++) await store.addTransition({ clientId: 'y1', from: 'gone', to: 'gone', reason: `note ${i}`, at: at(i) });
      const kept = await store.listTransitions('y1', 100);
      expect(kept[0]).toMatchObject({ reason: 'note 12', at: at(12) });
      expect(kept.map((t) => t.reason)).toEqual([...kept.map((t) => t.reason)].sort((a, b) => Number(b.slice(5)) - Number(a.slice(5))));
      await store.putInstance({ clientId: 'y1', agent: 'dock1', containerName: 'u-y1', containerId: 'cid', address: 'fd00:3::71/64', mac: '0a:00:00:00:00:71', image: 'img', createdAt: at(13) });
      expect(await store.countInstances({ mac: null })).toBe(1);
      expect(await store.getClient('y1')).toMatchObject({ state: 'gone', address: 'fd00:1::71' });
      expect(await store.listTransitions('y1', 1)).toEqual([{ clientId: 'y1', from: 'gone', to: 'gone', reason: 'note 12', at: at(12) }]);
      await store.close();
    });

    it('records kept images, lists them oldest first (all, or one client\'s), updates and deletes by image', async () => {
      const store = await open();
      const kept = (image: string, clientId: string, createdAt: string) => ({
        image, imageId: 'a'.repeat(64), clientId, agent: 'dock1', hostname: 'h', profile: 'p', sizeBytes: 1024, createdAt, expiresAt: null,
      });
      await store.putKept(kept('unionize-kept/c2:2', 'c2', '2026-01-02T00:00:00.000Z'));
      await store.putKept(kept('unionize-kept/c1:1', 'c1', '2026-01-01T00:00:00.000Z'));
      await store.putKept(kept('unionize-kept/c2:3', 'c2', '2026-01-03T00:00:00.000Z'));
      expect((await store.listKept()).map((k) => k.image)).toEqual(['unionize-kept/c1:1', 'unionize-kept/c2:2', 'unionize-kept/c2:3']);
      expect((await store.listKept('c2')).map((k) => k.image)).toEqual(['unionize-kept/c2:2', 'unionize-kept/c2:3']);
      await store.putKept({ ...kept('unionize-kept/c2:2', 'c2', '2026-01-02T00:00:00.000Z'), sizeBytes: 5, expiresAt: '2026-02-01T00:00:00.000Z' });
      expect((await store.listKept('c2'))[0]).toEqual({ ...kept('unionize-kept/c2:2', 'c2', '2026-01-02T00:00:00.000Z'), sizeBytes: 5, expiresAt: '2026-02-01T00:00:00.000Z' });
      await store.deleteKept('unionize-kept/c2:2');
      await store.deleteKept('unionize-kept/none:1');
      expect((await store.listKept()).map((k) => k.image)).toEqual(['unionize-kept/c1:1', 'unionize-kept/c2:3']);
      await store.close();
    });

    it('rolls a failed transaction back', async () => {
      const store = await open();
      await expect(
        store.transaction((tx) => {
          tx.putClient(client('t1'));
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      // The memory store has no rollback; only durable stores promise it.
      if (name !== 'MemoryStore') expect(await store.getClient('t1')).toBeUndefined();
      await store.close();
    });
  });
}
