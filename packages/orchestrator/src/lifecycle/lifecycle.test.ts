import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DHCP_ADDRESS, clientIdOf, type AddressingMode, type LeaseEvent } from '@unionize/protocol';
import { z } from 'zod';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { Bans } from '../bans/bans.js';
import { EventDispatcher } from '../events/dispatcher.js';
import { HostsPinner } from '../pinning/hosts-pinner.js';
import { buildProfiles, profileSchema } from '../profiles/profiles.js';
import { Reconciler } from '../reconcile/reconciler.js';
import { MemoryStore } from '../store/memory-store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { Lifecycle, type Placement } from './lifecycle.js';

function setup(options: {
  agents?: FakeAgent[]; placement?: (agents: FakeAgent[]) => Placement; addressing?: AddressingMode; profiles?: Record<string, Record<string, unknown>>;
  /** Pins and bans written to a real directory (the HostsPinner). */
  pinning?: boolean;
  /** Which agents keep which warm pools (PoolSync.has). */
  pools?: { has(agent: string, pool: string): boolean };
} = {}) {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock = { now: () => new Date(now) };
  const log = pino({ level: 'silent' });
  const agents = options.agents ?? [new FakeAgent('dock1'), new FakeAgent('dock2')];
  const store = new MemoryStore(options.addressing === 'dhcp' ? {} : { prefix: 'fd00:3::/64' });
  const profiles = buildProfiles(z.record(z.string(), profileSchema).parse(options.profiles ?? {}), 'img:default');
  const placement = options.placement?.(agents);
  const pinDir = options.pinning ? join(makeTempDir('pins-'), 'hosts.d') : undefined;
  const pinner = pinDir ? new HostsPinner({ dir: pinDir, log }) : undefined;
  const bans = new Bans({ store, clock, log, ...(pinner ? { entries: pinner } : {}), recorded: [] });
  const lifecycle = new Lifecycle({
    store, agents, clock, log, image: 'img:default', prefixLength: 64, profiles, bans,
    addressing: options.addressing ?? 'static',
    ...(placement ? { placement } : {}),
    ...(pinner ? { pinner } : {}),
    ...(options.pools ? { pools: options.pools } : {}),
  });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 4, retryBaseMs: 3_600_000 });
  const reconciler = new Reconciler({ store, lifecycle, dispatcher, agents, clock, log, adoptUnknown: false, adoptGraceMs: 3_600_000, expiryGraceMs: 0, keepEvents: 1000,
    ...(placement ? { isDead: placement.isDead } : {}) });
  const send = async (over: Partial<LeaseEvent>) => {
    const event: LeaseEvent = {
      eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: '00:01:aa', iaid: '1', address: 'fd00:1::1000',
      hostname: null, mac: null, interface: null, expiresAt: null, seenAt: clock.now().toISOString(), ...over,
    };
    await dispatcher.accept(event);
    await dispatcher.idle();
    return clientIdOf(event.server, event.duid, event.iaid);
  };
  const reconcile = async () => {
    const report = await reconciler.runOnce();
    await dispatcher.idle();
    return report;
  };
  /** The pins directory's files and what each holds. */
  const pins = () => Object.fromEntries(readdirSync(pinDir!).map((name) => [name, readFileSync(join(pinDir!, name), 'utf8')]));
  return { store, agents, lifecycle, send, reconcile, advance: (ms: number) => (now += ms), dispatcher, bans, pins };
}

describe('Lifecycle: profiles, TTL and cool-down', () => {
  const profiles = {
    small: { match_hostname: 'small-*', image: 'img:small', memory: '64m', cpus: '0.5', ttl_seconds: '5', cooldown_seconds: '30', env: 'SIZE=small' },
    big: { match_hostname: 'big-*', image: 'img:big', memory: '256m' },
  };

  it('names a profile\'s warm pool in the request only to an agent that keeps it', async () => {
    const pooled = { web: { match_hostname: 'web-*', pool: '2' } };
    const t = setup({ profiles: pooled, agents: [new FakeAgent('new'), new FakeAgent('old')], pools: { has: (agent, pool) => agent === 'new' && pool === 'web' } });
    const ids = [await t.send({ duid: '00:01:01', hostname: 'web-1' }), await t.send({ duid: '00:01:02', hostname: 'web-2' }), await t.send({ duid: '00:01:03', hostname: 'other' })];
    const requests = t.agents.flatMap((a) => [...a.requests.values()].map((r) => ({ agent: a.name, id: r.labels['io.unionize.client-id'], pool: r.pool })));
    const of = (id: string) => requests.find((r) => r.id === id)!;
    expect(of(ids[0]!).pool).toBe(of(ids[0]!).agent === 'new' ? 'web' : undefined);
    expect(of(ids[1]!).pool).toBe(of(ids[1]!).agent === 'new' ? 'web' : undefined);
    expect(new Set([of(ids[0]!).agent, of(ids[1]!).agent])).toEqual(new Set(['new', 'old']));
    expect(of(ids[2]!).pool).toBeUndefined();
  });

  it('makes each device its profile’s container', async () => {
    const t = setup({ profiles });
    const small = await t.send({ duid: '00:01:01', hostname: 'small-1' });
    const big = await t.send({ duid: '00:01:02', hostname: 'big-1' });
    const plain = await t.send({ duid: '00:01:03', hostname: 'other' });
    const request = (id: string) => t.agents.flatMap((a) => [...a.requests.values()]).find((r) => r.labels['io.unionize.client-id'] === id)!;
    expect(request(small)).toMatchObject({ image: 'img:small', memoryBytes: 64 * 1024 ** 2, nanoCpus: 500_000_000, env: { SIZE: 'small', PROFILE: 'small' } });
    expect(request(big)).toMatchObject({ image: 'img:big', memoryBytes: 256 * 1024 ** 2 });
    expect(request(plain)).toMatchObject({ image: 'img:default', env: { PROFILE: 'default' } });
    expect(request(plain).memoryBytes).toBeUndefined();
    expect(await t.store.getClient(small)).toMatchObject({ profile: 'small', ttlExpiresAt: '2026-01-01T00:00:05.000Z' });
    expect(await t.store.getClient(plain)).toMatchObject({ profile: null, ttlExpiresAt: null });
  });

  it('removes the container when its TTL runs out though the lease lives, and holds the cool-down', async () => {
    const t = setup({ profiles });
    const id = await t.send({ hostname: 'small-1' });
    t.advance(4_000);
    expect((await t.reconcile()).ttlExpired).toBe(0);
    t.advance(1_000);
    expect((await t.reconcile()).ttlExpired).toBe(1);
    expect(await t.store.getClient(id)).toMatchObject({ state: 'gone', desired: 'removed', cooldownUntil: '2026-01-01T00:00:35.000Z' });
    expect(t.agents.every((a) => a.containers.size === 0)).toBe(true);
    // A renewal during the cool-down: recorded, no container.
    t.advance(10_000);
    await t.send({ hostname: 'small-1', action: 'old' });
    expect(await t.store.getClient(id)).toMatchObject({ state: 'gone', desired: 'removed' });
    expect((await t.reconcile()).repaired).toBe(0);
    expect(t.agents.every((a) => a.containers.size === 0)).toBe(true);
    // After it, the next renewal brings a new container with a fresh TTL.
    t.advance(21_000);
    await t.send({ hostname: 'small-1', action: 'old' });
    expect(await t.store.getClient(id)).toMatchObject({ state: 'ready', cooldownUntil: null, ttlExpiresAt: '2026-01-01T00:00:41.000Z' });
  });
});

describe('Lifecycle: placement over several agents', () => {
  function placement(status: Record<string, { capacity?: number; draining?: boolean; dead?: boolean }>) {
    return (agents: FakeAgent[]): Placement => ({
      candidates: () => agents.filter((a) => !status[a.name]?.draining && !status[a.name]?.dead),
      capacity: (name) => status[name]?.capacity ?? 0,
      isDead: (name) => status[name]?.dead ?? false,
    });
  }

  it('spreads clients over the least-loaded agents within capacity, and refuses when all are full', async () => {
    const t = setup({ placement: placement({ dock1: { capacity: 2 }, dock2: { capacity: 1 } }) });
    for (let i = 1; i <= 3; i++) await t.send({ duid: `00:01:0${i}` });
    expect(t.agents.map((a) => a.containers.size)).toEqual([2, 1]);
    const fourth = await t.send({ duid: '00:01:04' });
    expect(await t.store.getClient(fourth)).toMatchObject({ state: 'failed', stateReason: expect.stringMatching(/no healthy agent with room/) });
  });

  it('counts containers still being made: a burst stays within capacity and spreads', async () => {
    const t = setup({ placement: placement({ dock1: { capacity: 3 }, dock2: { capacity: 3 } }) });
    // Accepted together: the dispatcher provisions four at a time, each before the others' instances are recorded.
    for (let i = 1; i <= 6; i++) {
      await t.dispatcher.accept({
        eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: `00:01:0${i}`, iaid: '1', address: `fd00:1::100${i}`,
        hostname: null, mac: null, interface: null, expiresAt: null, seenAt: new Date().toISOString(),
      });
    }
    await t.dispatcher.idle();
    expect(t.agents.map((a) => a.containers.size)).toEqual([3, 3]);
    expect((await t.store.listClients()).every((c) => c.state === 'ready')).toBe(true);
  });

  it('places nothing new on a draining agent; its clients stay, or move on request', async () => {
    const status: Record<string, { draining?: boolean }> = {};
    const t = setup({ placement: placement(status) });
    const first = await t.send({ duid: '00:01:01' });
    expect((await t.store.getInstance(first))?.agent).toBe('dock1');
    status.dock1 = { draining: true };
    const second = await t.send({ duid: '00:01:02' });
    const third = await t.send({ duid: '00:01:03' });
    expect([(await t.store.getInstance(second))?.agent, (await t.store.getInstance(third))?.agent]).toEqual(['dock2', 'dock2']);
    expect((await t.store.getInstance(first))?.agent).toBe('dock1');
    await t.lifecycle.move(first, 'agent dock1 drained with move');
    expect((await t.store.getInstance(first))?.agent).toBe('dock2');
    expect(t.agents[0]!.containers.size).toBe(0);
    expect(t.agents[1]!.containers.size).toBe(3);
  });

  it('provisions a dead agent’s clients elsewhere; its leftovers are removed when it returns', async () => {
    const status: Record<string, { dead?: boolean }> = {};
    const t = setup({ placement: placement(status) });
    const id = await t.send({ duid: '00:01:01' });
    expect((await t.store.getInstance(id))?.agent).toBe('dock1');
    t.agents[0]!.down = true;
    expect((await t.reconcile()).repaired).toBe(0);
    status.dock1 = { dead: true };
    await t.reconcile();
    expect((await t.store.getInstance(id))?.agent).toBe('dock2');
    expect((await t.store.getClient(id))?.state).toBe('ready');
    t.agents[0]!.down = false;
    status.dock1 = {};
    expect((await t.reconcile()).orphansRemoved).toBe(1);
    expect(t.agents[0]!.containers.size).toBe(0);
  });
});

describe('Lifecycle: the device addresses its container is reachable from', () => {
  const requestOf = (t: ReturnType<typeof setup>, id: string) =>
    t.agents.flatMap((a) => [...a.requests.values()]).find((r) => r.labels['io.unionize.client-id'] === id)!;

  it('sends the device\'s address with the container request, and again only when it changes', async () => {
    const t = setup({ agents: [new FakeAgent('dock1')] });
    const id = await t.send({ address: 'fd00:1::1000' });
    expect(requestOf(t, id).deviceAddresses).toEqual(['fd00:1::1000']);
    const containerAddress = requestOf(t, id).address;
    expect(t.agents[0]!.creates).toBe(1);
    await t.send({ action: 'old', address: 'fd00:1::1000' });
    expect(t.agents[0]!.creates).toBe(1);

    await t.send({ action: 'old', address: 'fd00:1::2000' });
    expect(t.agents[0]!.creates).toBe(2);
    expect(requestOf(t, id)).toMatchObject({ deviceAddresses: ['fd00:1::2000'], address: containerAddress });
    expect(await t.store.getClient(id)).toMatchObject({ state: 'ready', address: 'fd00:1::2000' });
  });

  it('a reconcile pass re-sends the request when the agent lets in another address than the device\'s', async () => {
    const t = setup({ agents: [new FakeAgent('dock1')] });
    const id = await t.send({ address: 'fd00:1::1000' });
    expect((await t.reconcile()).repaired).toBe(0);
    // The agent restarted and rebuilt its filter from a stale label.
    const view = [...t.agents[0]!.containers.values()][0]!;
    t.agents[0]!.containers.set(view.name, { ...view, deviceAddresses: ['fd00:1::99'] });
    expect((await t.reconcile()).repaired).toBe(1);
    expect(t.agents[0]!.creates).toBe(2);
    expect(t.agents[0]!.containers.get(view.name)?.deviceAddresses).toEqual(['fd00:1::1000']);
    expect((await t.store.getClient(id))?.state).toBe('ready');
    expect((await t.reconcile()).repaired).toBe(0);
  });

  it('an agent that does not filter (no deviceAddresses in its views) is left alone', async () => {
    const t = setup({ agents: [new FakeAgent('dock1')] });
    await t.send({ address: 'fd00:1::1000' });
    const view = [...t.agents[0]!.containers.values()][0]!;
    const { deviceAddresses: _, ...open } = view;
    t.agents[0]!.containers.set(view.name, open);
    expect((await t.reconcile()).repaired).toBe(0);
  });
});

describe('Lifecycle: dhcp addressing', () => {
  it('asks for dhcp and binds the container bridge’s lease to the instance by MAC', async () => {
    const agent = new FakeAgent('dock1');
    agent.leaseOnCreate = false;
    const t = setup({ agents: [agent], addressing: 'dhcp' });
    const id = await t.send({});
    const [request] = [...agent.requests.values()];
    expect(request?.address).toBe(DHCP_ADDRESS);
    expect(await t.store.getClient(id)).toMatchObject({ state: 'provisioning', stateReason: expect.stringMatching(/waiting for its DHCPv6 lease/) });
    const unknown = await t.send({ role: 'instance', duid: '00:03:00:01:02:00:00:00:00:99', mac: '02:00:00:00:00:99', address: 'fd00:3::1999', server: 'ctrnet' });
    expect(await t.store.getClient(unknown)).toBeUndefined();
    await t.send({ role: 'instance', duid: '00:03:00:01:99', mac: request!.mac, address: 'fd00:3::1234', server: 'ctrnet' });
    expect((await t.store.getInstance(id))?.address).toBe('fd00:3::1234/128');
    expect(await t.store.getClient(id)).toMatchObject({ state: 'ready', stateReason: expect.stringMatching(/leased fd00:3::1234/) });
    const outcomes = (await t.store.recentEvents(10)).map((e) => [e.outcomeKind, e.outcome]);
    expect(outcomes).toContainEqual(['ignored', 'ignored: no instance has MAC 02:00:00:00:00:99']);
    expect(outcomes).toContainEqual(['bound', `bound fd00:3::1234 to ${request!.name}`]);
  });
});

describe('Lifecycle: one device, one container, reached from each of its addresses', () => {
  const containers = (t: ReturnType<typeof setup>) => t.agents.flatMap((a) => [...a.containers.values()]);
  const allowed = (t: ReturnType<typeof setup>) => containers(t).map((c) => [...(c.deviceAddresses ?? [])].sort());

  it('an IA_TA beside the IA_NA makes no container: its address reaches the IA_NA’s, until its lease ends', async () => {
    const t = setup();
    const device = await t.send({ duid: '00:01:0a', iaid: '7', address: 'fd00:1::1000' });
    const temporary = await t.send({ duid: '00:01:0a', iaid: 'T7', address: 'fd00:1::2000' });
    expect(containers(t)).toHaveLength(1);
    expect(allowed(t)).toEqual([['fd00:1::1000', 'fd00:1::2000']]);
    expect((await t.store.getClient(device))?.state).toBe('ready');
    expect(await t.store.getClient(temporary)).toMatchObject({ state: 'ready', stateReason: `address of its device, reaching the container of client ${device}` });
    expect(await t.store.getInstance(temporary)).toBeUndefined();
    // A renewal of the IA_TA asks the agent for nothing.
    const creates = t.agents.reduce((n, a) => n + a.creates, 0);
    await t.send({ duid: '00:01:0a', iaid: 'T7', address: 'fd00:1::2000', action: 'old' });
    expect(t.agents.reduce((n, a) => n + a.creates, 0)).toBe(creates);
    // The reconciler leaves it be (no repair, no create).
    expect((await t.reconcile()).repaired).toBe(0);
    await t.send({ duid: '00:01:0a', iaid: 'T7', address: 'fd00:1::2000', action: 'del' });
    expect((await t.store.getClient(temporary))?.state).toBe('gone');
    expect(allowed(t)).toEqual([['fd00:1::1000']]);
    expect((await t.store.getClient(device))?.state).toBe('ready');
  });

  it('an IA_TA alone makes none; the device’s IA_NA that comes after makes one that lets both in', async () => {
    const t = setup();
    const temporary = await t.send({ duid: '00:01:0b', iaid: 'T1', address: 'fd00:1::2001' });
    expect(containers(t)).toHaveLength(0);
    expect((await t.store.recentEvents(1))[0]).toMatchObject({ outcomeKind: 'ignored' });
    await t.send({ duid: '00:01:0b', iaid: '1', address: 'fd00:1::1001' });
    expect(allowed(t)).toEqual([['fd00:1::1001', 'fd00:1::2001']]);
    expect((await t.store.getClient(temporary))?.state).toBe('ready');
  });

  it('a second IA_NA, even in the same exchange as the first, joins its device’s container; when the first ends, the second gets one', async () => {
    const t = setup();
    // Both journaled before either is applied: the dispatcher applies one device's events in order.
    const first = { duid: '00:01:0c', iaid: '1', address: 'fd00:1::1002' };
    const second = { duid: '00:01:0c', iaid: '2', address: 'fd00:1::1003' };
    for (const over of [first, second]) {
      await t.dispatcher.accept({ eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', hostname: null, mac: null, interface: null, expiresAt: null, seenAt: '2026-01-01T00:00:00.000Z', ...over });
    }
    await t.dispatcher.idle();
    expect(containers(t)).toHaveLength(1);
    expect(allowed(t)).toEqual([['fd00:1::1002', 'fd00:1::1003']]);
    const secondId = clientIdOf('devnet', second.duid, second.iaid);
    // The second's address changes: the container follows.
    await t.send({ ...second, address: 'fd00:1::1004', action: 'old' });
    expect(allowed(t)).toEqual([['fd00:1::1002', 'fd00:1::1004']]);
    // The first IA_NA is released: its container goes; the second's next renewal (or the reconciler) makes it one.
    await t.send({ ...first, action: 'del' });
    expect(containers(t)).toHaveLength(0);
    await t.reconcile();
    expect(await t.store.getInstance(secondId)).toBeDefined();
    expect(allowed(t)).toEqual([['fd00:1::1004']]);
  });

  it('a second IA_NA does not get round its device’s TTL cool-down', async () => {
    const t = setup({ profiles: { short: { match_hostname: 'short-*', ttl_seconds: '5', cooldown_seconds: '60' } } });
    const first = await t.send({ duid: '00:01:0d', iaid: '1', address: 'fd00:1::1005', hostname: 'short-1' });
    t.advance(6000);
    await t.reconcile();
    expect((await t.store.getClient(first))?.cooldownUntil).not.toBeNull();
    expect(containers(t)).toHaveLength(0);
    const second = await t.send({ duid: '00:01:0d', iaid: '2', address: 'fd00:1::1006', hostname: 'short-1' });
    expect(containers(t)).toHaveLength(0);
    expect((await t.store.getClient(second))?.stateReason).toMatch(/^its device is cooling down until/);
  });
});

describe('Lifecycle: pins live while their clients do', () => {
  it('after 500 clients come and go, the pins directory holds only the live ones', async () => {
    const t = setup({ pinning: true });
    const device = (i: number) => ({ duid: `00:03:00:01:52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`, address: `fd00:1::${(0x1000 + i).toString(16)}` });
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) ids.push(await t.send(device(i)));
    expect(Object.keys(t.pins())).toHaveLength(500);
    // Every third stays; the rest release their leases (del), or run out (the reconciler's expiry).
    const live = new Set<string>();
    for (let i = 0; i < 500; i++) {
      if (i % 3 === 0) live.add(ids[i]!);
      else if (i % 3 === 1) await t.send({ ...device(i), action: 'del' });
      else await t.send({ ...device(i), action: 'old', expiresAt: '2026-01-01T00:00:01.000Z' });
    }
    t.advance(2000);
    await t.reconcile();
    expect(await t.store.clientsPerState()).toMatchObject({ ready: live.size, gone: 500 - live.size });
    const files = t.pins();
    expect(Object.keys(files).sort()).toEqual([...live].sort());
    for (const id of live) expect(files[id]).toBe(`id:${(await t.store.getClient(id))!.duid},[${(await t.store.getClient(id))!.address}]\n`);
    // One comes back: pinned again.
    await t.send(device(1));
    expect(Object.keys(t.pins())).toHaveLength(live.size + 1);
  });
});

describe('Lifecycle: bans', () => {
  it('refuses a banned device a container, by DUID or by MAC, pins it not, and provisions it again once the ban ends', async () => {
    const t = setup({ pinning: true });
    const byDuid = { duid: '00:03:00:01:52:54:00:00:00:01', address: 'fd00:1::1001' };
    const byMac = { duid: '00:03:00:01:52:54:00:00:00:02', address: 'fd00:1::1002', mac: '52:54:00:00:00:02' };
    const first = await t.send(byDuid);
    const second = await t.send(byMac);
    const duidBan = await t.bans.add({ kind: 'duid', value: byDuid.duid }, 60);
    await t.bans.add({ kind: 'mac', value: byMac.mac });
    // The API queues these on a ban; here they are run directly.
    await t.lifecycle.deprovision(first, 'banned: test');
    await t.lifecycle.deprovision(second, 'banned: test');
    expect(await t.store.countInstances()).toBe(0);
    expect(Object.values(t.pins()).sort()).toEqual([`${byMac.mac},ignore\n`, `id:${byDuid.duid},ignore\n`]);

    // Their next lease events are refused, and no pin is written for them.
    await t.send(byDuid);
    await t.send({ ...byMac, action: 'old' });
    expect(await t.store.getClient(first)).toMatchObject({ state: 'failed', stateReason: `banned: DUID ${byDuid.duid} until ${duidBan.until}` });
    expect(await t.store.getClient(second)).toMatchObject({ state: 'failed', stateReason: `banned: MAC ${byMac.mac}` });
    expect((await t.store.recentEvents(2)).map((e) => e.outcomeKind)).toEqual(['refused', 'refused']);
    expect(await t.store.countInstances()).toBe(0);
    expect(Object.keys(t.pins()).filter((name) => !name.startsWith('ban-'))).toEqual([]);
    // A reconcile pass makes nothing either, and records no new transition.
    const transitions = (await t.store.listTransitions(first, 50)).length;
    await t.reconcile();
    expect(await t.store.countInstances()).toBe(0);
    expect(await t.store.listTransitions(first, 50)).toHaveLength(transitions);

    // The DUID ban ends: it applies no more, and expire() removes its entry; the next lease gets a container and a pin.
    t.advance(61_000);
    expect(t.bans.list().map((b) => b.kind)).toEqual(['mac']);
    expect((await t.bans.expire()).map((b) => b.value)).toEqual([byDuid.duid]);
    expect((await t.store.listBans()).map((b) => b.kind)).toEqual(['mac']);
    await t.send(byDuid);
    expect((await t.store.getClient(first))?.state).toBe('ready');
    expect(Object.values(t.pins()).sort()).toEqual([`${byMac.mac},ignore\n`, `id:${byDuid.duid},[${byDuid.address}]\n`]);
    // Unbanned: the reconciler provisions the MAC's client, whose lease lives.
    expect(await t.bans.remove({ kind: 'mac', value: byMac.mac })).toBe(true);
    expect(await t.bans.remove({ kind: 'mac', value: byMac.mac })).toBe(false);
    await t.reconcile();
    expect((await t.store.getClient(second))?.state).toBe('ready');
    expect(Object.keys(t.pins())).toEqual([first]);
    // Its pin comes back with its next lease event (dnsmasq answers it again).
    await t.send({ ...byMac, action: 'old' });
    expect(Object.keys(t.pins()).sort()).toEqual([first, second].sort());
  });
});

describe('Lifecycle: keeping a container as an image when its lease ends', () => {
  const profiles = {
    keeper: { match_hostname: 'keep-*', keep: 'true', keep_days: '2', keep_max_mb: '3' },
    plain: { match_hostname: 'plain-*' },
  };
  const oneAgent = () => [new FakeAgent('dock1')];

  it('a release commits the container before it goes, recorded with client, hostname, profile and keep_days; others are not kept', async () => {
    const t = setup({ profiles, agents: oneAgent() });
    const kept = await t.send({ duid: '00:01:01', hostname: 'keep-1' });
    const plain = await t.send({ duid: '00:01:02', hostname: 'plain-1' });
    await t.send({ duid: '00:01:01', hostname: 'keep-1', action: 'del' });
    await t.send({ duid: '00:01:02', hostname: 'plain-1', action: 'del' });
    expect((await t.store.getClient(kept))?.state).toBe('gone');
    expect(t.agents[0]!.containers.size).toBe(0);
    expect(await t.store.listKept()).toEqual([
      expect.objectContaining({ image: `unionize-kept/${kept}:20260101T000000000Z`, clientId: kept, agent: 'dock1', hostname: 'keep-1', profile: 'keeper', expiresAt: '2026-01-03T00:00:00.000Z' }),
    ]);
    expect(await t.store.listKept(plain)).toEqual([]);
  });

  it('TTL and lease expiry keep too; keep_max_mb prunes the oldest, keep_days removes what is older', async () => {
    const t = setup({ profiles: { keeper: { ...profiles.keeper, ttl_seconds: '5' } }, agents: oneAgent() });
    const ids: string[] = [];
    for (const n of [1, 2, 3, 4]) {
      ids.push(await t.send({ duid: `00:01:0${n}`, hostname: `keep-${n}`, expiresAt: new Date(Date.parse('2026-01-01T00:00:00Z') + 3_600_000).toISOString() }));
      t.advance(1000);
    }
    t.advance(5000);
    await t.reconcile(); // TTLs ran out: four keeps of 1 MiB each, the bound is 3 MiB
    expect((await t.store.listKept()).map((k) => k.clientId).sort()).toEqual(ids.slice(1).sort());
    expect([...t.agents[0]!.kept.values()].map((k) => k.client).sort()).toEqual(ids.slice(1).sort());
    t.advance(2 * 86_400_000);
    await t.reconcile();
    expect(await t.store.listKept()).toEqual([]);
    expect(t.agents[0]!.kept.size).toBe(0);
  });

  it('a failed commit leaves the container and fails the deprovisioning (tried again)', async () => {
    const t = setup({ profiles, agents: oneAgent() });
    const id = await t.send({ duid: '00:01:01', hostname: 'keep-1' });
    const agent = t.agents[0]!;
    agent.keepContainer = async () => {
      throw new Error('commit failed');
    };
    await expect(t.lifecycle.deprovision(id, 'test')).rejects.toThrow('commit failed');
    expect((await t.store.getClient(id))?.state).toBe('failed');
    expect(agent.containers.size).toBe(1);
  });

  it('restore makes the device’s container again from its newest kept image, on that image’s agent, for its current lease', async () => {
    const agents = [new FakeAgent('dock1'), new FakeAgent('dock2')];
    const t = setup({ profiles, agents });
    const id = await t.send({ duid: '00:01:01', hostname: 'keep-1' });
    await t.send({ duid: '00:01:01', hostname: 'keep-1', action: 'del' });
    const [kept] = await t.store.listKept(id);
    // Gone: nothing to restore for.
    await expect(t.lifecycle.restore(id, kept!)).rejects.toThrow(/holds no lease/);
    await t.send({ duid: '00:01:01', hostname: 'keep-1' });
    const fresh = (await t.store.getInstance(id))!;
    expect(fresh.image).toBe('img:default');
    await t.lifecycle.restore(id, kept!);
    const restored = (await t.store.getInstance(id))!;
    expect(restored).toMatchObject({ agent: kept!.agent, image: kept!.image });
    const request = agents.find((a) => a.name === kept!.agent)!.requests.get(restored.containerName)!;
    expect(request.image).toBe(kept!.image);
    expect(agents.flatMap((a) => [...a.containers.keys()])).toEqual([restored.containerName]);
    expect(await t.store.getClient(id)).toMatchObject({ state: 'ready', stateReason: expect.stringContaining('container') });
    // What ran before the restore was removed, not kept again.
    expect(await t.store.listKept(id)).toHaveLength(1);
  });
});
