import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { LeaseEvent } from '@unionize/protocol';
import { EventDispatcher } from '../events/dispatcher.js';
import { Reconciler } from '../reconcile/reconciler.js';
import { MemoryStore } from '../store/memory-store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { Lifecycle } from './lifecycle.js';
import { DEFAULT_QUOTAS, Quotas, prefix64Of, type QuotaLimits } from './quotas.js';

const off: QuotaLimits = { maxInstances: 0, maxPerAgent: 0, maxPerMac: 0, maxWithoutMac: 0, maxPerPrefix64: 0, newClientsPerMinute: 0, newClientsPerMacPerMinute: 0 };

function setup(limits: Partial<QuotaLimits>, agentCount = 1) {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock = { now: () => new Date(now) };
  const log = pino({ level: 'silent' });
  const store = new MemoryStore({ prefix: 'fd00:3::/64' });
  const agents = Array.from({ length: agentCount }, (_, i) => new FakeAgent(`dock${i + 1}`));
  const quotas = new Quotas({ ...off, ...limits }, clock);
  const lifecycle = new Lifecycle({ store, agents, clock, log, image: 'img', prefixLength: 64, quotas });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 8, retryBaseMs: 5, retryMaxMs: 10 });
  const reconciler = new Reconciler({
    store, lifecycle, dispatcher, agents, clock, log, adoptUnknown: false, adoptGraceMs: 3_600_000, expiryGraceMs: 10_000, keepEvents: 1000,
  });
  let n = 0;
  const event = (over: Partial<LeaseEvent> = {}): LeaseEvent => ({
    eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: `00:03:00:01:02:00:00:00:00:${(++n).toString(16).padStart(2, '0')}`,
    iaid: '1', address: `fd00:1::${(0x1000 + n).toString(16)}`, hostname: null, mac: `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`,
    interface: null, expiresAt: null, seenAt: clock.now().toISOString(), ...over,
  });
  const lease = async (over: Partial<LeaseEvent> = {}) => {
    const e = event(over);
    const { clientId } = await dispatcher.accept(e);
    await dispatcher.idle();
    return { clientId, event: e, client: (await store.getClient(clientId))! };
  };
  const containers = () => agents.reduce((sum, a) => sum + a.containers.size, 0);
  return { store, agents, dispatcher, reconciler, lease, containers, advance: (ms: number) => (now += ms) };
}

describe('quotas', () => {
  it('refuses a new container over max_instances: failed with a quota reason, recorded, logged as the event outcome', async () => {
    const t = setup({ maxInstances: 2 });
    await t.lease();
    await t.lease();
    const { clientId, client } = await t.lease();
    expect(t.containers()).toBe(2);
    expect(client.state).toBe('failed');
    expect(client.stateReason).toBe('quota: 2 instances in all, the most allowed (max_instances 2)');
    expect((await t.store.listTransitions(clientId, 10))[0]).toMatchObject({ from: 'pending', to: 'failed', reason: client.stateReason });
    expect((await t.store.recentEvents(1))[0]).toMatchObject({ outcome: `refused (${client.stateReason})`, outcomeKind: 'refused' });
  });

  it('does not retry a refusal on a timer, and records the same refusal only once', async () => {
    const t = setup({ maxInstances: 1 });
    await t.lease();
    const { clientId, event } = await t.lease();
    await new Promise((r) => setTimeout(r, 50));
    await t.reconciler.runOnce();
    await t.dispatcher.idle();
    await t.lease({ ...event, eventId: randomUUID(), action: 'old' });
    const failed = (await t.store.listTransitions(clientId, 50)).filter((tr) => tr.to === 'failed');
    expect(failed).toHaveLength(1);
    expect(t.agents[0]!.creates).toBe(1);
  });

  it('admits a refused client on its next lease event once room is made', async () => {
    const t = setup({ maxInstances: 1 });
    const first = await t.lease();
    const second = await t.lease();
    expect(second.client.state).toBe('failed');
    await t.lease({ ...first.event, eventId: randomUUID(), action: 'del' });
    await t.lease({ ...second.event, eventId: randomUUID(), action: 'old' });
    expect((await t.store.getClient(second.clientId))!.state).toBe('ready');
  });

  it('admits it on a reconcile pass too', async () => {
    const t = setup({ maxInstances: 1 });
    const first = await t.lease();
    const second = await t.lease();
    await t.lease({ ...first.event, eventId: randomUUID(), action: 'del' });
    await t.reconciler.runOnce();
    await t.dispatcher.idle();
    expect((await t.store.getClient(second.clientId))!.state).toBe('ready');
  });

  it('limits one MAC cycling DUIDs (max_per_mac), not other devices', async () => {
    const t = setup({ maxPerMac: 2 });
    const mac = '02:66:66:66:66:66';
    const states = [];
    for (let i = 0; i < 5; i++) states.push((await t.lease({ mac })).client.state);
    expect(states).toEqual(['ready', 'ready', 'failed', 'failed', 'failed']);
    expect((await t.lease()).client.state).toBe('ready');
    expect((await t.store.listClients()).find((c) => c.state === 'failed')!.stateReason).toMatch(/^quota: 2 instances for MAC 02:66:66:66:66:66 \(max_per_mac 2\)$/);
  });

  it('limits devices in one /64 (max_per_prefix64)', async () => {
    const t = setup({ maxPerPrefix64: 1 });
    expect((await t.lease({ address: 'fd00:1::10' })).client.state).toBe('ready');
    expect((await t.lease({ address: 'fd00:1::20' })).client.stateReason).toMatch(/quota: 1 instances for devices in fd00:1:0:0::\/64/);
    expect((await t.lease({ address: 'fd00:2::10' })).client.state).toBe('ready');
  });

  it('limits each agent (max_per_agent), placing on the others first', async () => {
    const t = setup({ maxPerAgent: 1 }, 2);
    const states = [(await t.lease()).client.state, (await t.lease()).client.state, (await t.lease()).client.state];
    expect(states).toEqual(['ready', 'ready', 'failed']);
    expect(t.agents.map((a) => a.containers.size)).toEqual([1, 1]);
  });

  it('limits the rate of new containers with a token bucket (new_clients_per_minute)', async () => {
    const t = setup({ newClientsPerMinute: 3 });
    const states = [];
    for (let i = 0; i < 4; i++) states.push((await t.lease()).client.state);
    expect(states).toEqual(['ready', 'ready', 'ready', 'failed']);
    expect((await t.store.listClients())[3]!.stateReason).toMatch(/new_clients_per_minute/);
    t.advance(20_000); // a minute's 3 tokens → one back
    expect((await t.lease()).client.state).toBe('ready');
    expect((await t.lease()).client.state).toBe('failed');
  });

  it('counts clients provisioned in parallel, so together they do not overshoot', async () => {
    const t = setup({ maxInstances: 3 });
    for (let i = 0; i < 10; i++) await t.dispatcher.accept(eventLike(i));
    await t.dispatcher.idle();
    expect(t.containers()).toBe(3);
    expect((await t.store.listClients()).filter((c) => c.state === 'failed')).toHaveLength(7);
  });

  it('leaves known clients alone: a renewal of a ready client is never refused', async () => {
    const t = setup({ maxInstances: 1, newClientsPerMinute: 1 });
    const first = await t.lease();
    const renewed = await t.lease({ ...first.event, eventId: randomUUID(), action: 'old' });
    expect(renewed.client.state).toBe('ready');
  });

  it('refuses negative or fractional limits when made', () => {
    expect(() => new Quotas({ maxPerMac: -1 }, { now: () => new Date() })).toThrow(/maxPerMac must be a whole number/);
  });

  it('takes the /64 of an address', () => {
    expect(prefix64Of('fd00:1::1000')).toBe('fd00:1:0:0');
    expect(prefix64Of('2001:db8:aa:bb:cc::1')).toBe('2001:db8:aa:bb');
    expect(prefix64Of('not-an-address')).toBeNull();
  });
});

function eventLike(i: number): LeaseEvent {
  return {
    eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: `00:03:00:01:02:00:00:00:01:${i.toString(16).padStart(2, '0')}`,
    iaid: '1', address: `fd00:1::${(0x2000 + i).toString(16)}`, hostname: null, mac: null, interface: null, expiresAt: null,
    seenAt: new Date().toISOString(),
  };
}

describe('quotas among strangers', () => {
  it('holds one device cycling 200 DUIDs under one MAC to max_per_mac containers, by default', async () => {
    const t = setup({ maxPerMac: DEFAULT_QUOTAS.maxPerMac });
    for (let i = 0; i < 200; i++) await t.lease({ mac: '02:66:00:00:00:01' });
    expect(t.containers()).toBe(2);
    const refused = (await t.store.listClients()).filter((c) => c.state === 'failed');
    expect(refused).toHaveLength(198);
    expect(refused[0]!.stateReason).toBe('quota: 2 instances for MAC 02:66:00:00:00:01 (max_per_mac 2)');
    // Another device is not held back by it.
    await t.lease({ mac: '02:77:00:00:00:01' });
    expect(t.containers()).toBe(3);
  });

  it('counts the clients without a MAC together, against max_without_mac', async () => {
    const t = setup({ maxPerMac: 2, maxWithoutMac: 3 });
    for (let i = 0; i < 10; i++) await t.lease({ mac: null });
    expect(t.containers()).toBe(3);
    const refused = (await t.store.listClients()).find((c) => c.state === 'failed')!;
    expect(refused.stateReason).toBe('quota: 3 instances for devices whose MAC is not known (max_without_mac 3)');
    await t.lease();
    expect(t.containers()).toBe(4);
  });

  it('limits new containers a minute per MAC (and for the clients without one, together), refilling with time', async () => {
    const t = setup({ newClientsPerMacPerMinute: 4, newClientsPerMinute: 100 });
    for (let i = 0; i < 10; i++) await t.lease({ mac: '02:66:00:00:00:01' });
    for (let i = 0; i < 10; i++) await t.lease({ mac: null });
    expect(t.containers()).toBe(8);
    const reasons = new Set((await t.store.listClients()).filter((c) => c.state === 'failed').map((c) => c.stateReason));
    expect(reasons).toEqual(new Set([
      'quota: more than 4 new containers a minute for MAC 02:66:00:00:00:01 (new_clients_per_mac_per_minute)',
      'quota: more than 4 new containers a minute for devices whose MAC is not known (new_clients_per_mac_per_minute)',
    ]));
    // Well-behaved devices arriving meanwhile get theirs: a refusal took nothing from the global bucket.
    for (let i = 0; i < 3; i++) await t.lease();
    expect(t.containers()).toBe(11);
    t.advance(15_000);
    await t.lease({ mac: '02:66:00:00:00:01' });
    await t.lease({ mac: '02:66:00:00:00:01' });
    expect(t.containers()).toBe(12);
  });
});
