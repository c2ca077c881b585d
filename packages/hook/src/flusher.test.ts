import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LeaseEvent } from '@unionize/protocol/lease-event';
import type { DeliverFn, DeliveryResult } from './deliver.js';
import { flushRound, flushSpool, runFlusher } from './flusher.js';
import type { Level } from './log.js';
import { Spool } from './spool.js';
import { spoolWriter } from './testing/spool-writer.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

const DUID = '00:03:00:01:02:aa:bb:cc:dd:01';
const OK: DeliveryResult = { ok: true, status: 202 };
const BUSY: DeliveryResult = { ok: false, retryable: true, status: 503, reason: 'overloaded' };
const REFUSED: DeliveryResult = { ok: false, retryable: false, status: 400, reason: 'bad event' };

/** A fake orchestrator: answers from `answer(event)` and records what it saw. */
function fakeDeliver(answer: (e: LeaseEvent) => DeliveryResult = () => OK) {
  const seen: { iaid: string; depth: number; rejected: number }[] = [];
  const deliver: DeliverFn = async (e, { spoolDepth, rejected }) => {
    seen.push({ iaid: e.iaid, depth: spoolDepth, rejected });
    return answer(e);
  };
  return { deliver, seen };
}

/** A spool, and `spoolCall(iaid)` spooling one call through dnsmasq/orchestrator-hook.sh. */
function setup() {
  const work = makeTempDir('hook-flusher-');
  const dir = join(work, 'spool');
  const spool = new Spool({ dir, dhcp: { server: 'devnet', role: 'device' } });
  const writer = spoolWriter(dir, work);
  const spoolCall = (iaid: string) => {
    const r = writer.call(['old', DUID, 'fd00:1::1000'], { DNSMASQ_IAID: iaid });
    if (r.status !== 0) throw new Error(`hook script failed: ${r.stderr}`);
  };
  const lines: { level: Level; msg: string; fields: Record<string, unknown> }[] = [];
  const log = (level: Level, msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  const iaids = () => spool.list().map((n) => (spool.read(n) as { event: LeaseEvent }).event.iaid);
  return { dir, spool, spoolCall, lines, log, iaids, now: () => performance.now() };
}

describe('flushSpool', () => {
  it('delivers the spool oldest first, with the spool depth on each, as events of its [dhcp]', async () => {
    const s = setup();
    for (const iaid of ['1', '2', '3']) s.spoolCall(iaid);
    const servers: string[] = [];
    const { deliver, seen } = fakeDeliver((e) => (servers.push(`${e.server}/${e.role}`), OK));
    expect(await flushSpool({ ...s, deliver, timeoutMs: 1000 })).toEqual({ delivered: 3, rejected: 0, remaining: 0, stopped: null });
    expect(seen.map((x) => [x.iaid, x.depth])).toEqual([['1', 2], ['2', 1], ['3', 0]]);
    expect(servers).toEqual(['devnet/device', 'devnet/device', 'devnet/device']);
  });

  it('stops at the first retryable failure: nothing overtakes it', async () => {
    const s = setup();
    for (const iaid of ['1', '2', '3']) s.spoolCall(iaid);
    const { deliver, seen } = fakeDeliver((x) => (x.iaid === '2' ? BUSY : OK));
    expect(await flushSpool({ ...s, deliver, timeoutMs: 1000 })).toMatchObject({ delivered: 1, remaining: 2, stopped: 'retryable', reason: 'HTTP 503: overloaded' });
    expect(seen.map((x) => x.iaid)).toEqual(['1', '2']);
    expect(s.iaids()).toEqual(['2', '3']);
  });

  it('moves a refused call to rejected/, loudly, and goes on', async () => {
    const s = setup();
    for (const iaid of ['1', '2']) s.spoolCall(iaid);
    const [first] = s.spool.list();
    const { deliver, seen } = fakeDeliver((x) => (x.iaid === '1' ? REFUSED : OK));
    expect(await flushSpool({ ...s, deliver, timeoutMs: 1000 })).toMatchObject({ delivered: 1, rejected: 1, remaining: 0 });
    expect(seen.map((x) => [x.iaid, x.rejected])).toEqual([['1', 0], ['2', 1]]);
    expect(readdirSync(join(s.dir, 'rejected')).sort()).toEqual([first, `${first}.reason`]);
    expect(readFileSync(join(s.dir, 'rejected', `${first}.reason`), 'utf8')).toMatch(/^\S+Z refused by the orchestrator: HTTP 400: bad event\n$/);
    expect(s.spool.rejectedCount()).toBe(1);
    expect(s.lines.find((l) => l.level === 'error')).toMatchObject({ msg: expect.stringContaining('refused a spooled event (HTTP 400: bad event)') });
  });

  it('moves an unreadable spool file to rejected/ instead of stopping on it', async () => {
    const s = setup();
    const bad = `000000000000001-1-${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}.call`;
    s.spoolCall('1');
    writeFileSync(join(s.dir, bad), 'garbage');
    const { deliver, seen } = fakeDeliver();
    expect(await flushSpool({ ...s, deliver, timeoutMs: 1000 })).toMatchObject({ delivered: 1, rejected: 1 });
    expect(seen.map((x) => x.iaid)).toEqual(['1']);
    expect(readdirSync(join(s.dir, 'rejected')).sort()).toEqual([bad, `${bad}.reason`]);
  });

  it('picks up calls spooled while it ran', async () => {
    const s = setup();
    s.spoolCall('1');
    const { deliver, seen } = fakeDeliver((x) => {
      if (x.iaid === '1') s.spoolCall('2'); // dnsmasq ran the hook meanwhile
      return OK;
    });
    expect(await flushSpool({ ...s, deliver, timeoutMs: 1000 })).toEqual({ delivered: 2, rejected: 0, remaining: 0, stopped: null });
    expect(seen.map((x) => x.iaid)).toEqual(['1', '2']);
  });

  it('stops when aborted, between deliveries', async () => {
    const s = setup();
    for (const iaid of ['1', '2', '3']) s.spoolCall(iaid);
    const abort = new AbortController();
    const { deliver, seen } = fakeDeliver(() => (abort.abort(), OK));
    expect(await flushSpool({ ...s, deliver, timeoutMs: 1000, signal: abort.signal })).toMatchObject({ delivered: 1, remaining: 2, stopped: 'aborted' });
    expect(seen).toHaveLength(1);
  });
});

describe('flushRound', () => {
  it('moves what is not a call aside (logged), and delivers the calls around it', async () => {
    const s = setup();
    s.spoolCall('1');
    const stray = '000000000000001-1-00000000-0000-4000-8000-000000000000.json';
    writeFileSync(join(s.dir, stray), '{}');
    const fifo = '000000000000002-1-00000000-0000-4000-8000-000000000000.call';
    execFileSync('mkfifo', [join(s.dir, fifo)]);
    s.spoolCall('2');
    const { deliver, seen } = fakeDeliver();
    expect(await flushRound({ ...s, makeDeliver: () => deliver, timeoutMs: 1000 })).toMatchObject({ delivered: 2, rejected: 1, remaining: 0 });
    expect(seen.map((x) => x.iaid)).toEqual(['1', '2']);
    expect(readdirSync(join(s.dir, 'rejected')).filter((n) => !n.endsWith('.reason')).sort()).toEqual([stray, fifo].sort());
    expect(s.lines.filter((l) => l.level !== 'info').map((l) => [l.level, l.msg.replace(/moved to .*/, 'moved')])).toEqual([
      ['warn', `not a spooled call (the script names its calls <ms>-<pid>-<event id>.call): moved ${stray} to ${join(s.dir, 'rejected', stray)}`],
      ['error', 'spooled file is not a lease event (not a regular file): moved'],
    ]);
  });

  it('reports an unreadable key file (makeDeliver throws) as an error, not a crash', async () => {
    const s = setup();
    const round = await flushRound({ ...s, makeDeliver: () => { throw new Error('key file x: cannot read'); }, timeoutMs: 1000 });
    expect(round).toEqual({ error: 'key file x: cannot read' });
  });
});

describe('runFlusher: the flusher daemon', () => {
  it('keeps flushing until aborted: the spool drains once the orchestrator comes back', async () => {
    const s = setup();
    s.spoolCall('1');
    let up = false;
    const deliver: DeliverFn = async (): Promise<DeliveryResult> => (up ? OK : { ok: false, retryable: true, reason: 'down' });
    const abort = new AbortController();
    const running = runFlusher({ ...s, makeDeliver: () => deliver, timeoutMs: 1000, intervalMs: 30, signal: abort.signal });
    for (let i = 0; i < 200 && !s.lines.some((l) => l.msg.startsWith('spool not flushed')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.spool.depth()).toBe(1);
    up = true;
    for (let i = 0; i < 200 && s.spool.depth() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await running;
    expect(s.spool.depth()).toBe(0);
    const msgs = s.lines.map((l) => l.msg);
    // The outage is logged once, not every round.
    expect(msgs.filter((m) => m.startsWith('spool not flushed'))).toHaveLength(1);
    expect(msgs).toContain('orchestrator reachable again: spool empty');
    expect(msgs.at(-1)).toBe('flusher stopped');
  });

  it('retries an auth or clock refusal (401) with back-off, logged as an error, and drops nothing', async () => {
    const s = setup();
    s.spoolCall('1');
    s.spoolCall('2');
    let calls = 0;
    const deliver: DeliverFn = async (): Promise<DeliveryResult> => (calls++, { ok: false, retryable: true, status: 401, reason: 'bad signature' });
    const abort = new AbortController();
    const running = runFlusher({ ...s, makeDeliver: () => deliver, timeoutMs: 1000, intervalMs: 30, signal: abort.signal });
    for (let i = 0; i < 500 && calls < 3; i++) await new Promise((r) => setTimeout(r, 10));
    abort.abort();
    await running;
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(s.spool.depth()).toBe(2);
    expect(existsSync(join(s.dir, 'rejected'))).toBe(false);
    expect(s.lines.find((l) => l.msg.startsWith('spool not flushed'))).toMatchObject({ level: 'error', msg: 'spool not flushed: HTTP 401: bad signature' });
  });

  it('delivers what is spooled at once (the directory is watched), not at the next interval', async () => {
    const s = setup();
    const delivered: string[] = [];
    const abort = new AbortController();
    const running = runFlusher({ ...s, makeDeliver: () => async (e) => (delivered.push(e.iaid), OK), timeoutMs: 1000, intervalMs: 60_000, signal: abort.signal });
    for (let i = 0; i < 200 && !s.lines.some((l) => l.msg === 'flusher started'); i++) await new Promise((r) => setTimeout(r, 10));
    s.spoolCall('7');
    for (let i = 0; i < 250 && delivered.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await running;
    expect(delivered).toEqual(['7']);
  });

  it('holds the spool for its life: a second flusher on the same spool refuses to start', async () => {
    const s = setup();
    const abort = new AbortController();
    const deliver = () => async () => OK;
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
