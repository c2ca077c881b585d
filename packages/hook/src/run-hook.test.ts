import { randomUUID } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LeaseEvent } from '@unionize/protocol/lease-event';
import type { DeliveryResult } from './deliver.js';
import type { Level } from './log.js';
import { flushSpool, runHook, type DeliverFn, type HookRunOptions } from './run-hook.js';
import { Spool } from './spool.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

let seq = 0;
function event(): LeaseEvent {
  seq++;
  return {
    eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: '00:03:00:01:02:aa:bb:cc:dd:01',
    iaid: String(seq), address: 'fd00:1::1000', hostname: null, mac: null, interface: null, expiresAt: null,
    seenAt: new Date().toISOString(),
  };
}

const OK: DeliveryResult = { ok: true, status: 202 };
const DOWN: DeliveryResult = { ok: false, retryable: true, reason: 'connect ECONNREFUSED' };
const BUSY: DeliveryResult = { ok: false, retryable: true, status: 503, reason: 'overloaded' };
const REFUSED: DeliveryResult = { ok: false, retryable: false, status: 400, reason: 'bad event' };

/** A fake orchestrator: answers from `answer(event)` and records what it saw. */
function fakeDeliver(answer: (e: LeaseEvent) => DeliveryResult | Promise<DeliveryResult> = () => OK) {
  const seen: { iaid: string; depth: number; timeoutMs: number }[] = [];
  const deliver: DeliverFn = async (e, { timeoutMs, spoolDepth }) => {
    seen.push({ iaid: e.iaid, depth: spoolDepth, timeoutMs });
    return answer(e);
  };
  return { deliver, seen };
}

function setup(maxEvents = 100) {
  const dir = makeTempDir('hook-run-');
  const spool = new Spool({ dir, maxEvents });
  const lines: { level: Level; msg: string; fields: Record<string, unknown> }[] = [];
  const log = (level: Level, msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  const iaids = () => spool.list().map((n) => (spool.read(n) as { event: LeaseEvent }).event.iaid);
  return { dir, spool, log, lines, iaids };
}

function options(s: ReturnType<typeof setup>, deliver: DeliverFn, event: LeaseEvent, extra: Partial<HookRunOptions> = {}): HookRunOptions {
  const start = performance.now();
  return { event, spool: s.spool, deliver, log: s.log, timeoutMs: 3000, now: () => performance.now(), deadline: start + 5000, ...extra };
}

describe('runHook', () => {
  it('delivers directly when the spool is empty, and writes nothing', async () => {
    const s = setup();
    const { deliver, seen } = fakeDeliver();
    const e = event();
    expect(await runHook(options(s, deliver, e))).toEqual({ outcome: 'delivered' });
    expect(seen).toEqual([{ iaid: e.iaid, depth: 0, timeoutMs: 3000 }]);
    expect(readdirSync(s.dir)).toEqual([]); // lock released, nothing spooled
  });

  it('spools the event when the orchestrator is down or answers 5xx/429', async () => {
    for (const answer of [DOWN, BUSY, { ok: false, retryable: true, status: 429, reason: 'slow down' } as const]) {
      const s = setup();
      const e = event();
      const outcome = await runHook(options(s, fakeDeliver(() => answer).deliver, e));
      expect(outcome).toMatchObject({ outcome: 'spooled' });
      expect(s.iaids()).toEqual([e.iaid]);
      expect(s.lines.find((l) => l.msg.startsWith('spooled'))).toMatchObject({ level: 'warn', fields: { eventId: e.eventId, depth: 1 } });
    }
  });

  it('delivers the spool oldest first, then the new event, with the spool depth on each', async () => {
    const s = setup();
    const old = [event(), event(), event()];
    for (const e of old) s.spool.put(e);
    const { deliver, seen } = fakeDeliver();
    const e = event();
    expect(await runHook(options(s, deliver, e))).toMatchObject({ outcome: 'delivered', flush: { delivered: 3, remaining: 0 } });
    expect(seen.map((x) => [x.iaid, x.depth])).toEqual([[old[0]!.iaid, 2], [old[1]!.iaid, 1], [old[2]!.iaid, 0], [e.iaid, 0]]);
    expect(s.spool.depth()).toBe(0);
  });

  it('stops at the first retryable failure and spools the new event behind the rest', async () => {
    const s = setup();
    const old = [event(), event(), event()];
    for (const e of old) s.spool.put(e);
    // The first goes through, the second gets a 503: the third must not overtake it.
    const { deliver, seen } = fakeDeliver((x) => (x.iaid === old[1]!.iaid ? BUSY : OK));
    const e = event();
    const outcome = await runHook(options(s, deliver, e));
    expect(outcome).toMatchObject({ outcome: 'spooled', flush: { delivered: 1, remaining: 2, stopped: 'retryable' } });
    expect(seen.map((x) => x.iaid)).toEqual([old[0]!.iaid, old[1]!.iaid]);
    expect(s.iaids()).toEqual([old[1]!.iaid, old[2]!.iaid, e.iaid]);
  });

  it('moves a refused spooled event to rejected/, loudly, and goes on', async () => {
    const s = setup();
    const old = [event(), event()];
    const names = old.map((e) => s.spool.put(e));
    const { deliver, seen } = fakeDeliver((x) => (x.iaid === old[0]!.iaid ? REFUSED : OK));
    const e = event();
    expect(await runHook(options(s, deliver, e))).toMatchObject({ outcome: 'delivered', flush: { delivered: 1, rejected: 1 } });
    expect(seen.map((x) => x.iaid)).toEqual([old[0]!.iaid, old[1]!.iaid, e.iaid]);
    expect(readdirSync(join(s.dir, 'rejected'))).toEqual([names[0]]);
    expect(s.lines.find((l) => l.level === 'error')).toMatchObject({ msg: expect.stringContaining('refused a spooled event (HTTP 400: bad event)'), fields: { eventId: old[0]!.eventId } });
  });

  it('keeps a refused new event in rejected/', async () => {
    const s = setup();
    const e = event();
    const outcome = await runHook(options(s, fakeDeliver(() => REFUSED).deliver, e));
    expect(outcome).toMatchObject({ outcome: 'rejected', file: expect.stringContaining(`${e.eventId}.json`) });
    expect(s.spool.depth()).toBe(0);
    expect(readdirSync(join(s.dir, 'rejected'))).toHaveLength(1);
    expect(s.lines.at(-1)).toMatchObject({ level: 'error', msg: expect.stringContaining('refused the event') });
  });

  it('moves an unreadable spool file to rejected/ instead of stopping on it', async () => {
    const s = setup();
    const good = event();
    s.spool.put(good);
    const bad = `000000000000001-1-000001-${randomUUID()}.json`;
    writeFileSync(join(s.dir, bad), 'garbage');
    const { deliver, seen } = fakeDeliver();
    await runHook(options(s, deliver, event()));
    expect(seen[0]!.iaid).toBe(good.iaid);
    expect(readdirSync(join(s.dir, 'rejected'))).toEqual([bad]);
  });

  it('when the spool is full: logs the whole event as lost, at error, and returns at once', async () => {
    const s = setup(2);
    s.spool.put(event());
    s.spool.put(event());
    const e = event();
    const started = performance.now();
    const outcome = await runHook(options(s, fakeDeliver(() => DOWN).deliver, e));
    expect(performance.now() - started).toBeLessThan(500);
    expect(outcome).toMatchObject({ outcome: 'lost', why: expect.stringContaining('full') });
    expect(s.lines.at(-1)).toMatchObject({ level: 'error', msg: expect.stringContaining('event lost'), fields: { code: 'HOOK_SPOOL_FULL', event: e } });
    expect(s.spool.depth()).toBe(2);
  });

  it('with an unwritable spool: delivers directly when nothing older waits, else reports the event lost', async () => {
    const parent = join(makeTempDir('hook-run-'), 'file');
    writeFileSync(parent, '');
    const s = { ...setup(), spool: new Spool({ dir: join(parent, 'spool'), maxEvents: 10 }) };
    const up = fakeDeliver();
    expect(await runHook(options(s, up.deliver, event()))).toEqual({ outcome: 'delivered' });
    expect(s.lines[0]).toMatchObject({ level: 'error', msg: expect.stringContaining('spool unusable') });

    const e = event();
    expect(await runHook(options(s, fakeDeliver(() => DOWN).deliver, e))).toMatchObject({ outcome: 'lost' });
    expect(s.lines.at(-1)).toMatchObject({ level: 'error', fields: { code: 'HOOK_SPOOL_UNWRITABLE', event: e } });
  });

  it('spools behind a flush that holds the lock, without delivering anything', async () => {
    const s = setup();
    const held = s.spool.tryLock();
    if (!held.ok) throw new Error('expected the lock');
    const { deliver, seen } = fakeDeliver();
    const e = event();
    const outcome = await runHook(options(s, deliver, e, { lockWaitMs: 100 }));
    held.lock.release();
    expect(outcome).toMatchObject({ outcome: 'spooled', why: expect.stringContaining(`pid ${process.pid}`) });
    expect(seen).toEqual([]);
    expect(s.iaids()).toEqual([e.iaid]);
  });

  it('honours the time budget: a slow orchestrator stops the flush, and the new event is spooled in time', async () => {
    const s = setup();
    const old = Array.from({ length: 10 }, event);
    for (const e of old) s.spool.put(e);
    // Each delivery takes 300 ms; or hangs for its whole timeout.
    const slow = fakeDeliver(() => new Promise((r) => setTimeout(() => r(OK), 300)));
    const started = performance.now();
    const e = event();
    const outcome = await runHook(options(s, slow.deliver, e, { deadline: started + 1200 }));
    const took = performance.now() - started;
    expect(took).toBeLessThan(1200);
    expect(outcome).toMatchObject({ outcome: 'spooled', flush: { stopped: 'budget' } });
    expect(slow.seen.length).toBeGreaterThanOrEqual(2);
    expect(slow.seen.length).toBeLessThan(10);
    expect(s.iaids().at(-1)).toBe(e.iaid);
    expect(s.spool.depth()).toBe(10 - slow.seen.length + 1);

    // A delivery is never given more time than is left.
    const hang: DeliverFn = (_e, { timeoutMs }) => new Promise((r) => setTimeout(() => r(DOWN), timeoutMs));
    const s2 = setup();
    const started2 = performance.now();
    expect(await runHook(options(s2, hang, event(), { deadline: started2 + 800, timeoutMs: 3000 }))).toMatchObject({ outcome: 'spooled' });
    expect(performance.now() - started2).toBeLessThan(800);
  });
});

describe('flushSpool', () => {
  it('picks up events spooled while it ran', async () => {
    const s = setup();
    const first = event();
    s.spool.put(first);
    const late = event();
    const { deliver, seen } = fakeDeliver((x) => {
      if (x.iaid === first.iaid) s.spool.put(late); // a hook run spooled behind the flush
      return OK;
    });
    const result = await flushSpool({ spool: s.spool, deliver, log: s.log, timeoutMs: 1000, now: () => performance.now() });
    expect(result).toEqual({ delivered: 2, rejected: 0, remaining: 0, stopped: null });
    expect(seen.map((x) => x.iaid)).toEqual([first.iaid, late.iaid]);
  });

  it('stops when aborted, between deliveries', async () => {
    const s = setup();
    for (let i = 0; i < 3; i++) s.spool.put(event());
    const abort = new AbortController();
    const { deliver, seen } = fakeDeliver(() => {
      abort.abort();
      return OK;
    });
    const result = await flushSpool({ spool: s.spool, deliver, log: s.log, timeoutMs: 1000, now: () => performance.now(), signal: abort.signal });
    expect(result).toMatchObject({ delivered: 1, remaining: 2, stopped: 'aborted' });
    expect(seen).toHaveLength(1);
  });
});
