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

  it('trims once, idleMs after the last activity, and again only after new activity', () => {
    const gc = vi.fn();
    const trims: number[] = [];
    const trim = new IdleTrim({ idleMs: 30_000, gc, log, onTrim: (s) => trims.push(s) });
    trim.noteActivity();
    vi.advanceTimersByTime(20_000);
    trim.noteActivity();
    vi.advanceTimersByTime(29_000);
    expect(gc).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_000);
    expect(gc).toHaveBeenCalledTimes(1);
    expect(trims).toHaveLength(1);
    vi.advanceTimersByTime(300_000);
    expect(gc).toHaveBeenCalledTimes(1);
    trim.noteActivity();
    vi.advanceTimersByTime(30_000);
    expect(gc).toHaveBeenCalledTimes(2);
  });

  it('does not trim after stop', () => {
    const gc = vi.fn();
    const trim = new IdleTrim({ idleMs: 1_000, gc, log });
    trim.noteActivity();
    trim.stop();
    vi.advanceTimersByTime(10_000);
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
