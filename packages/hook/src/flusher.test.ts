import { randomUUID } from 'node:crypto';



import { describe, expect, it } from 'vitest';
import type { LeaseEvent } from '@unionize/protocol/lease-event';
import type { DeliveryResult } from './deliver.js';
import { flushRound, runFlusher } from './flusher.js';
import type { Level } from './log.js';
import type { DeliverFn } from './run-hook.js';
import { Spool } from './spool.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

const event = (): LeaseEvent => ({
  eventId: randomUUID(), server: 'devnet', role: 'device', action: 'old', duid: '00:03:00:01:02:aa:bb:cc:dd:01', iaid: '1',
  address: 'fd00:1::1000', hostname: null, mac: null, interface: null, expiresAt: null, seenAt: new Date().toISOString(),
});

function setup() {
  const spool = new Spool({ dir: makeTempDir('hook-flusher-'), maxEvents: 100 });
  const lines: { level: Level; msg: string }[] = [];
  return { spool, lines, log: (level: Level, msg: string) => void lines.push({ level, msg }), now: () => performance.now() };
}

describe('flushRound (orchestrator-hook --flush)', () => {
  it('delivers the spool under the lock', async () => {
    const s = setup();
    for (let i = 0; i < 3; i++) s.spool.put(event());
    const round = await flushRound({ ...s, makeDeliver: () => async () => ({ ok: true, status: 202 }), timeoutMs: 1000 });
    expect(round).toEqual({ delivered: 3, rejected: 0, remaining: 0, stopped: null });
  });

  it('reports a held lock instead of waiting forever', async () => {
    const s = setup();
    const held = s.spool.tryLock();
    const round = await flushRound({ ...s, makeDeliver: () => async () => ({ ok: true, status: 202 }), timeoutMs: 1000, lockWaitMs: 50 });
    expect(round).toEqual({ busy: true, heldBy: process.pid });
    if (held.ok) held.lock.release();
  });

  it('reports an unreadable secret (makeDeliver throws) as an error, not a crash', async () => {
    const s = setup();
    const round = await flushRound({ ...s, makeDeliver: () => { throw new Error('secret file x: cannot read'); }, timeoutMs: 1000 });
    expect(round).toEqual({ error: 'secret file x: cannot read' });
  });
});

describe('runFlusher (--interval)', () => {
  it('keeps flushing until aborted: the spool drains once the orchestrator comes back', async () => {
    const s = setup();
    s.spool.put(event());
    let up = false;
    const deliver: DeliverFn = async (): Promise<DeliveryResult> => (up ? { ok: true, status: 202 } : { ok: false, retryable: true, reason: 'down' });
    const abort = new AbortController();
    const running = runFlusher({ ...s, makeDeliver: () => deliver, timeoutMs: 1000, intervalMs: 30, signal: abort.signal });
    await new Promise((r) => setTimeout(r, 100));
    expect(s.spool.depth()).toBe(1);
    up = true;
    for (let i = 0; i < 50 && s.spool.depth() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await running;
    expect(s.spool.depth()).toBe(0);
    const msgs = s.lines.map((l) => l.msg);
    // The outage is logged once, not every round.
    expect(msgs.filter((m) => m.startsWith('spool not flushed'))).toHaveLength(1);
    expect(msgs).toContain('orchestrator reachable again: spool empty');
    expect(msgs.at(-1)).toBe('flusher stopped');
  });
});

describe('runFlusher: the flusher daemon', () => {
  it('delivers what is spooled at once (the directory is watched), not at the next interval', async () => {
    const s = setup();
    const delivered: string[] = [];
    const abort = new AbortController();
    const running = runFlusher({ ...s, makeDeliver: () => async (e) => (delivered.push(e.eventId), { ok: true, status: 202 }), timeoutMs: 1000, intervalMs: 60_000, signal: abort.signal });
    await new Promise((r) => setTimeout(r, 100));
    const spooled = event();
    s.spool.put(spooled);
    for (let i = 0; i < 100 && delivered.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await running;
    expect(delivered).toEqual([spooled.eventId]);
  });

  it('holds the spool for its life: a second flusher on the same spool refuses to start', async () => {
    const s = setup();
    const abort = new AbortController();
    const deliver = () => async () => ({ ok: true as const, status: 202 });
    const first = runFlusher({ ...s, makeDeliver: deliver, timeoutMs: 1000, intervalMs: 60_000, signal: abort.signal });
    await expect(runFlusher({ ...s, makeDeliver: deliver, timeoutMs: 1000, intervalMs: 60_000, signal: abort.signal })).rejects.toThrow(/another flusher/);
    abort.abort();
    await first;
    // Released on the way out.
    const again = s.spool.tryFlusherLock();
    expect(again.ok).toBe(true);
    if (again.ok) again.lock.release();
  });
});
