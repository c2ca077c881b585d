import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventDispatcher } from '../events/dispatcher.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { metricsObserver } from '../metrics/observer.js';
import { createMetrics } from '../metrics/metrics.js';
import { MemoryStore } from '../store/memory-store.js';
import type { ClientRecord, ClientState } from '../store/types.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { SERIES_MINUTES, SeriesSampler, chartSeriesSchema, storeCounts } from './sampler.js';

/** A clock the test steps; never the wall clock. */
function fakeClock(iso = '2025-03-01T12:00:00.000Z') {
  let ms = Date.parse(iso);
  return { now: () => new Date(ms), advance: (byMs: number) => void (ms += byMs), at: (when: string) => void (ms = Date.parse(when)) };
}

function sampler(options: { random?: () => number; latenciesPerMinute?: number } = {}) {
  const clock = fakeClock();
  const counts = { devices: 0, containers: 0 };
  const s = new SeriesSampler({ clock, counts: { devices: async () => counts.devices, containers: async () => counts.containers }, ...options });
  return { s, clock, counts };
}

const minute = (iso: string) => Date.parse(iso) / 1000;

describe('SeriesSampler', () => {
  afterEach(() => vi.useRealTimers());

  it('answers the last 60 minutes, oldest first, null before anything was sampled, as the schema says', async () => {
    const { s, clock } = sampler();
    clock.at('2025-03-01T12:00:42.000Z');
    const series = await s.series();
    expect(chartSeriesSchema.parse(series)).toEqual(series);
    expect(series.t).toHaveLength(SERIES_MINUTES);
    expect(series.t.at(-1)).toBe(minute('2025-03-01T12:00:00Z'));
    expect(series.t[0]).toBe(minute('2025-03-01T11:01:00Z'));
    expect(series.t.every((t, i) => i === 0 || t - series.t[i - 1]! === 60)).toBe(true);
    // series() samples the current minute; the hour before it is unknown.
    expect(series.devices.slice(0, -1).every((v) => v === null)).toBe(true);
    expect(series.devices.at(-1)).toBe(0);
    expect(series.leaseToReady.p50.every((v) => v === null)).toBe(true);
    expect(series.leaseToReady.count.every((v) => v === 0)).toBe(true);
  });

  it('keeps the counts last sampled in each minute', async () => {
    const { s, clock, counts } = sampler();
    counts.devices = 1;
    counts.containers = 0;
    await s.sample();
    clock.advance(30_000);
    counts.devices = 3;
    counts.containers = 2;
    await s.sample();
    clock.advance(40_000); // 12:01:10
    counts.devices = 4;
    counts.containers = 4;
    const series = await s.series();
    expect(series.devices.slice(-2)).toEqual([3, 4]);
    expect(series.containers.slice(-2)).toEqual([2, 4]);
    expect(series.devices.at(-3)).toBeNull();
  });

  it('gives lease→ready p50 and p95 per minute by nearest rank, with how many became ready', async () => {
    const { s, clock } = sampler();
    for (const seconds of [20, 3, 1, 19, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]) s.observeLeaseToReady(seconds);
    clock.advance(60_000);
    s.observeLeaseToReady(0.5);
    clock.advance(120_000);
    const { leaseToReady } = await s.series();
    expect(leaseToReady.p50.slice(-4)).toEqual([10, 0.5, null, null]);
    expect(leaseToReady.p95.slice(-4)).toEqual([19, 0.5, null, null]);
    expect(leaseToReady.count.slice(-4)).toEqual([20, 1, 0, 0]);
  });

  it('updates the current minute as more clients become ready, and ignores nonsense', async () => {
    const { s } = sampler();
    s.observeLeaseToReady(2);
    expect((await s.series()).leaseToReady.p95.at(-1)).toBe(2);
    s.observeLeaseToReady(8);
    s.observeLeaseToReady(Number.NaN);
    s.observeLeaseToReady(-1);
    const { leaseToReady } = await s.series();
    expect([leaseToReady.p50.at(-1), leaseToReady.p95.at(-1), leaseToReady.count.at(-1)]).toEqual([2, 8, 2]);
  });

  it('forgets what is older than an hour: the ring is reused, every array stays 60 long', async () => {
    const { s, clock, counts } = sampler();
    counts.devices = 7;
    await s.sample(); // 12:00
    s.observeLeaseToReady(1);
    clock.advance(59 * 60_000); // 12:59: 12:00 is the oldest minute shown
    expect((await s.series()).devices[0]).toBe(7);
    clock.advance(60_000); // 13:00, in 12:00's slot
    counts.devices = 8;
    const series = await s.series();
    expect(series.t[0]).toBe(minute('2025-03-01T12:01:00Z'));
    expect(series.devices.slice(0, 2)).toEqual([null, null]);
    expect(series.devices.slice(-2)).toEqual([7, 8]); // 12:59 (sampled by the series() above), 13:00
    expect(series.leaseToReady.count.every((v) => v === 0)).toBe(true);
    expect([series.t, series.devices, series.containers, ...Object.values(series.leaseToReady)].every((a) => a.length === SERIES_MINUTES)).toBe(true);
  });

  it('keeps at most latenciesPerMinute times in a flood (a uniform sample), yet counts them all', async () => {
    // random() ≈ 1: Algorithm R never replaces, so the sample is the first 8.
    const { s } = sampler({ latenciesPerMinute: 8, random: () => 0.999999 });
    for (let i = 1; i <= 1000; i += 1) s.observeLeaseToReady(i);
    const { leaseToReady } = await s.series();
    expect([leaseToReady.p50.at(-1), leaseToReady.p95.at(-1), leaseToReady.count.at(-1)]).toEqual([4, 8, 1000]);
    // random() = 0: each new time replaces the first kept one.
    const low = sampler({ latenciesPerMinute: 2, random: () => 0 });
    for (const seconds of [1, 2, 3, 40]) low.s.observeLeaseToReady(seconds);
    expect((await low.s.series()).leaseToReady.p95.at(-1)).toBe(40);
    expect(() => new SeriesSampler({ clock: fakeClock(), counts: { devices: async () => 0, containers: async () => 0 }, latenciesPerMinute: 0 })).toThrow(/at least 1/);
  });

  it('takes no sample into a newer minute when the clock steps back', async () => {
    const { s, clock, counts } = sampler();
    clock.advance(60 * 60_000);
    counts.devices = 5;
    await s.sample();
    clock.advance(-60 * 60_000);
    counts.devices = 1;
    await s.sample();
    s.observeLeaseToReady(3);
    clock.advance(60 * 60_000);
    const series = await s.series();
    expect(series.devices.at(-1)).toBe(1); // sampled by series() itself
    expect(series.leaseToReady.count.at(-1)).toBe(0);
  });

  it('samples on its own timer once started, and not after stop', () => {
    vi.useFakeTimers();
    const clock = fakeClock();
    const devices = vi.fn(async () => 1);
    const s = new SeriesSampler({ clock, counts: { devices, containers: async () => 1 } });
    s.start(10_000);
    expect(devices).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(30_000);
    expect(devices).toHaveBeenCalledTimes(4);
    s.stop();
    vi.advanceTimersByTime(30_000);
    expect(devices).toHaveBeenCalledTimes(4);
  });
});

function client(id: string, state: ClientState): ClientRecord {
  const at = '2025-03-01T12:00:00.000Z';
  return {
    id, server: 'devnet', role: 'device', duid: `00:03:00:01:${id}`, iaid: '1', address: `fd00:1::${id}`, hostname: null, mac: null, state,
    desired: state === 'gone' ? 'removed' : 'running', stateReason: 'test', expiresAt: null, profile: null, ttlExpiresAt: null, cooldownUntil: null,
    firstSeen: at, lastSeen: at, updatedAt: at,
  };
}

describe('storeCounts', () => {
  it('counts clients not gone as devices, and every recorded container', async () => {
    const store = new MemoryStore({ prefix: 'fd00:3::/64' });
    await store.putClient(client('a1', 'ready'));
    await store.putClient(client('a2', 'provisioning'));
    await store.putClient(client('a3', 'gone'));
    await store.putInstance({ clientId: 'a1', agent: 'dock1', containerName: 'c-a1', containerId: 'x', address: 'fd00:3::100/64', mac: '02:00:00:00:00:01', image: 'img:1', createdAt: '2025-03-01T12:00:00.000Z' });
    const counts = storeCounts(store);
    expect([await counts.devices(), await counts.containers()]).toEqual([2, 1]);
  });
});

describe('lease→ready from the life cycle', () => {
  it('hears the time from the hook seeing an add to its client being ready', async () => {
    const clock = fakeClock('2025-03-01T12:00:30.000Z');
    const log = pino({ level: 'silent' });
    const store = new MemoryStore({ prefix: 'fd00:3::/64' });
    const agents = [new FakeAgent('dock1')];
    const s = new SeriesSampler({ clock, counts: storeCounts(store) });
    const observer = metricsObserver(createMetrics(), { clock, onLeaseToReady: (seconds) => s.observeLeaseToReady(seconds) });
    const lifecycle = new Lifecycle({ store, agents, clock, log, image: 'img:1', prefixLength: 64, observer });
    const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 1, observer });
    await dispatcher.accept({
      eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: '00:03:00:01:02:aa:bb:cc:dd:01', iaid: '1',
      address: 'fd00:1::1000', hostname: 'laptop', mac: '02:aa:bb:cc:dd:01', interface: 'brdev', expiresAt: null, seenAt: '2025-03-01T12:00:27.500Z',
    });
    await dispatcher.idle();
    const series = await s.series();
    expect(series.leaseToReady.p50.at(-1)).toBe(2.5);
    expect(series.leaseToReady.count.at(-1)).toBe(1);
    expect([series.devices.at(-1), series.containers.at(-1)]).toEqual([1, 1]);
  });
});
