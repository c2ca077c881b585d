import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { beginRequest, requestIdMixin } from '../context/request-context.js';
import { IdleTrim, lastResortGc } from './idle-trim.js';

const log = pino({ level: 'silent' });

describe('IdleTrim', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('trims once, idleMs after the last activity, and again only after new activity', async () => {
    const gc = vi.fn();
    const trims: number[] = [];
    const trim = new IdleTrim({ idleMs: 30_000, gc, log, onTrim: (s) => trims.push(s) });
    trim.noteActivity();
    await vi.advanceTimersByTimeAsync(20_000);
    trim.noteActivity();
    await vi.advanceTimersByTimeAsync(29_000);
    expect(gc).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(gc).toHaveBeenCalledTimes(1);
    expect(trims).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(300_000);
    expect(gc).toHaveBeenCalledTimes(1);
    trim.noteActivity();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(gc).toHaveBeenCalledTimes(2);
  });

  it("compacts the store before it collects, and collects even when compacting fails", async () => {
    const order: string[] = [];
    const compact = vi.fn(async () => {
      order.push('compact');
    });
    const trim = new IdleTrim({ idleMs: 1_000, gc: () => order.push('gc'), compact, log });
    trim.noteActivity();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(order).toEqual(['compact', 'gc']);

    const warnings: string[] = [];
    const warnLog = pino({ level: 'warn' }, { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) });
    const gc = vi.fn();
    const failing = new IdleTrim({ idleMs: 1_000, gc, compact: () => Promise.reject(new Error('no')), log: warnLog });
    failing.noteActivity();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(gc).toHaveBeenCalledTimes(1);
    expect(warnings).toEqual(['memory trim: compacting the store failed; collecting anyway']);
  });

  it('logs a collection that throws, and trims again after the next activity', async () => {
    const warnings: string[] = [];
    const warnLog = { ...log, warn: (_: unknown, message: string) => warnings.push(message), info: () => undefined } as unknown as typeof log;
    let calls = 0;
    const trim = new IdleTrim({ idleMs: 1_000, gc: () => { if (++calls === 1) throw new Error('out of memory'); }, log: warnLog });
    trim.noteActivity();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(warnings).toEqual(['memory trim: the collection failed; trying again after the next activity']);
    trim.noteActivity();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toBe(2);
  });

  it('does not trim after stop', async () => {
    const gc = vi.fn();
    const trim = new IdleTrim({ idleMs: 1_000, gc, log });
    trim.noteActivity();
    trim.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(gc).not.toHaveBeenCalled();
  });
});

describe('lastResortGc', () => {
  it('is there only when node runs with --expose-gc', () => {
    const gc = (globalThis as { gc?: unknown }).gc;
    expect(lastResortGc() === undefined).toBe(typeof gc !== 'function');
  });
});

describe('IdleTrim, on real timers', () => {
  it('logs its trim outside the work of the event that set its timer', async () => {
    const lines: Array<{ requestId?: string; msg: string }> = [];
    const recording = pino({ mixin: requestIdMixin }, { write: (line: string) => lines.push(JSON.parse(line) as { requestId?: string; msg: string }) });
    await new Promise<void>((resolve) => {
      const trim = new IdleTrim({ idleMs: 5, gc: () => {}, log: recording, onTrim: () => resolve() });
      beginRequest('event-1', () => trim.noteActivity());
    });
    expect(lines).toEqual([expect.objectContaining({ msg: 'memory trimmed after activity stopped' })]);
    expect(lines[0]!.requestId).toBeUndefined();
  });
});
