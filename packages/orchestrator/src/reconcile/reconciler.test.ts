import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { clientIdOf, type LeaseEvent } from '@unionize/protocol';
import { EventDispatcher } from '../events/dispatcher.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { MemoryStore } from '../store/memory-store.js';
import { SqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { Reconciler } from './reconciler.js';

function setup(options: { store?: Store; adoptUnknown?: boolean; agent?: FakeAgent } = {}) {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock = { now: () => new Date(now) };
  const log = pino({ level: 'silent' });
  const store = options.store ?? new MemoryStore({ prefix: 'fd00:3::/64' });
  const agent = options.agent ?? new FakeAgent('dock1');
  const lifecycle = new Lifecycle({ store, agents: [agent], clock, log, image: 'img', prefixLength: 64 });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 4, retryBaseMs: 60_000 });
  const reconciler = new Reconciler({
    store, lifecycle, dispatcher, agents: [agent], clock, log,
    adoptUnknown: options.adoptUnknown ?? false, adoptGraceMs: 3_600_000, expiryGraceMs: 10_000, keepEvents: 1000,
  });
  const lease = async (duid: string, over: Partial<LeaseEvent> = {}) => {
    const e: LeaseEvent = {
      eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid, iaid: '1', address: 'fd00:1::1000',
      hostname: null, mac: null, interface: null, expiresAt: new Date(now + 120_000).toISOString(), seenAt: clock.now().toISOString(), ...over,
    };
    await dispatcher.accept(e);
    await dispatcher.idle();
    return clientIdOf('devnet', duid, '1');
  };
  const pass = async () => {
    const report = await reconciler.runOnce();
    await dispatcher.idle();
    return report;
  };
  return { store, agent, lease, pass, advance: (ms: number) => (now += ms), dispatcher };
}

describe('Reconciler', () => {
  it('removes the container of a lease whose del never came, once expiry and grace pass', async () => {
    const t = setup();
    const id = await t.lease('00:01:aa');
    expect(t.agent.containers.size).toBe(1);
    t.advance(125_000);
    expect((await t.pass()).expired).toBe(0);
    t.advance(10_000);
    expect((await t.pass()).expired).toBe(1);
    expect(t.agent.containers.size).toBe(0);
    expect(await t.store.getClient(id)).toMatchObject({ state: 'gone', desired: 'removed' });
    expect((await t.store.listTransitions(id, 1))[0]?.reason).toMatch(/^lease expired at/);
  });

  it('makes a missing container again, and re-attaches one found unattached', async () => {
    const t = setup();
    const id = await t.lease('00:01:aa');
    const name = (await t.store.getInstance(id))!.containerName;
    t.agent.containers.delete(name);
    expect((await t.pass()).repaired).toBe(1);
    expect(t.agent.containers.has(name)).toBe(true);
    t.agent.containers.set(name, { ...t.agent.containers.get(name)!, state: 'exited', address: null });
    expect((await t.pass()).repaired).toBe(1);
    expect(t.agent.containers.get(name)).toMatchObject({ state: 'running' });
    expect((await t.pass()).repaired).toBe(0);
    expect((await t.store.getClient(id))?.state).toBe('ready');
  });

  it('removes containers nobody owns when the store is durable', async () => {
    const agent = new FakeAgent('dock1');
    const first = setup({ agent });
    await first.lease('00:01:aa');
    // A new, empty durable store next to the same agent: its container is an orphan.
    const t = setup({ store: new SqliteStore({ path: ':memory:', prefix: 'fd00:3::/64' }), agent });
    expect((await t.pass()).orphansRemoved).toBe(1);
    expect(agent.containers.size).toBe(0);
  });

  it('adopts containers from their labels when the store is in memory, and a lease event then confirms them', async () => {
    const agent = new FakeAgent('dock1');
    const first = setup({ agent });
    const id = await first.lease('00:01:aa');
    const address = (await first.store.getInstance(id))!.address;
    const t = setup({ agent, adoptUnknown: true });
    expect((await t.pass()).adopted).toBe(1);
    expect(await t.store.getClient(id)).toMatchObject({ state: 'ready', duid: '00:01:aa', address: 'fd00:1::1000' });
    expect((await t.store.getInstance(id))?.address).toBe(address);
    expect(await t.store.allocateAddress('someone-else')).not.toBe(address.split('/')[0]);
    const creates = agent.creates;
    await t.lease('00:01:aa', { action: 'old' });
    expect(agent.creates).toBe(creates);
    expect(agent.containers.size).toBe(1);
  });

  it('does not provision again a client it adopts in the same pass (the snapshot saw it pending, in the same millisecond)', async () => {
    const agent = new FakeAgent('dock1');
    const first = setup({ agent });
    const ids = [await first.lease('00:01:aa'), await first.lease('00:01:bb', { address: 'fd00:1::1001' }), await first.lease('00:01:cc', { address: 'fd00:1::1002' })];
    const creates = agent.creates;
    const t = setup({ agent, adoptUnknown: true });
    expect((await t.pass()).adopted).toBe(3);
    for (const id of ids) expect((await t.store.getClient(id))?.stateReason).toMatch(/^adopted container/);
    expect(agent.creates).toBe(creates);
  });

  it('leaves an unreachable agent alone', async () => {
    const t = setup();
    await t.lease('00:01:aa');
    t.agent.down = true;
    const report = await t.pass();
    expect(report).toMatchObject({ agentsUnreachable: ['dock1'], repaired: 0, orphansRemoved: 0 });
  });

  it('finishes a release cut short by a failure', async () => {
    const t = setup();
    const id = await t.lease('00:01:aa');
    t.agent.down = true;
    await t.lease('00:01:aa', { action: 'del' });
    expect(await t.store.getClient(id)).toMatchObject({ state: 'failed', desired: 'removed' });
    t.agent.down = false;
    expect((await t.pass()).repaired).toBe(1);
    expect((await t.store.getClient(id))?.state).toBe('gone');
    expect(t.agent.containers.size).toBe(0);
    t.dispatcher.stop();
  });
});
