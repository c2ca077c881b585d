import type { LeaseEvent } from '@unionize/protocol/lease-event';
import type { DeliverFn, DeliveryResult } from './deliver.js';
import type { Log } from './log.js';
import type { HeldLock } from './pid-lock.js';
import { SpoolError, type Spool } from './spool.js';

export type { DeliverFn } from './deliver.js';

/** No delivery is started with less time than this left. */
export const MIN_ATTEMPT_MS = 100;
/** Kept back from the budget to spool the new event (write, fsync, rename) and exit. */
export const SPOOL_RESERVE_MS = 250;

export interface FlushOptions {
  spool: Spool;
  deliver: DeliverFn;
  log: Log;
  /** Per delivery. */
  timeoutMs: number;
  /** Monotonic milliseconds. */
  now: () => number;
  /** No delivery may run past this (in `now()` time); none when absent. */
  deadline?: number;
  signal?: AbortSignal;
}

export interface FlushResult {
  delivered: number;
  rejected: number;
  /** Events still spooled when it stopped. */
  remaining: number;
  stopped: null | 'retryable' | 'budget' | 'aborted';
  /** Why the delivery that stopped it failed. */
  reason?: string;
}

/**
 * Deliver the spool oldest first. The caller holds the spool's lock. A retryable
 * failure stops it (order per client must hold, so nothing may overtake the
 * event that failed); a refusal moves that event to rejected/ and goes on.
 * Events spooled meanwhile (behind a running flush) are picked up before it returns.
 */
export async function flushSpool(o: FlushOptions): Promise<FlushResult> {
  let delivered = 0;
  let rejected = 0;
  const stop = (stopped: FlushResult['stopped'], reason?: string): FlushResult => ({
    delivered, rejected, remaining: o.spool.depth(), stopped, ...(reason === undefined ? {} : { reason }),
  });
  for (;;) {
    const names = o.spool.list();
    if (names.length === 0) return { delivered, rejected, remaining: 0, stopped: null };
    for (const [index, name] of names.entries()) {
      if (o.signal?.aborted) return stop('aborted');
      const timeoutMs = attemptTimeout(o.timeoutMs, o.now, o.deadline);
      if (timeoutMs < MIN_ATTEMPT_MS) return stop('budget');
      const read = o.spool.read(name);
      if (read.ok === 'ignored') {
        o.spool.remove(name);
        o.log('info', `ignored: ${read.reason}`, { file: name });
        continue;
      }
      if (!read.ok) {
        const file = o.spool.reject(name);
        rejected++;
        o.log('error', `spooled file is not a lease event (${read.reason}): moved to ${file}`, { file });
        continue;
      }
      const { event } = read;
      for (const warning of read.warnings ?? []) o.log('warn', warning, { eventId: event.eventId });
      // Depth = events still waiting behind this one, so the last one of a drained spool reports 0.
      const result = await o.deliver(event, { timeoutMs, spoolDepth: names.length - index - 1 });
      if (result.ok) {
        o.spool.remove(name);
        delivered++;
        continue;
      }
      if (result.retryable) return stop('retryable', describeFailure(result));
      const file = o.spool.reject(name);
      rejected++;
      o.log('error', `orchestrator refused a spooled event (${describeFailure(result)}): moved to ${file}; it will not be retried`, {
        eventId: event.eventId, action: event.action, duid: event.duid, status: result.status, file,
      });
    }
  }
}

export interface LockWaitOptions {
  spool: Spool;
  now: () => number;
  waitMs: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Take the spool lock, polling for up to `waitMs`; null when another process still holds it. Throws SpoolError. */
export async function acquireSpoolLock(o: LockWaitOptions): Promise<{ lock: HeldLock } | { lock: null; heldBy: number | null }> {
  const sleep = o.sleep ?? defaultSleep;
  const until = o.now() + o.waitMs;
  for (;;) {
    const attempt = o.spool.tryLock();
    if (attempt.ok) return { lock: attempt.lock };
    if (o.now() + 20 > until) return { lock: null, heldBy: attempt.heldBy };
    await sleep(20);
  }
}

export interface HookRunOptions {
  event: LeaseEvent;
  spool: Spool;
  deliver: DeliverFn;
  log: Log;
  /** Per delivery (config `timeout_ms`). */
  timeoutMs: number;
  /** Monotonic milliseconds. */
  now: () => number;
  /** The whole run ends by then, in `now()` time (process start + `budget_ms`). */
  deadline: number;
  /**
   * How long to wait for a running flush to let go of the lock before spooling
   * behind it (a flush picks up what is spooled meanwhile); default 250 ms, so a
   * long flush does not slow dnsmasq's script queue to one event a second.
   */
  lockWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export type HookOutcome =
  | { outcome: 'delivered'; flush?: FlushResult }
  | { outcome: 'spooled'; file: string; why: string; flush?: FlushResult }
  | { outcome: 'rejected'; file: string | null; flush?: FlushResult }
  | { outcome: 'lost'; why: string; flush?: FlushResult };

/**
 * One dnsmasq call: deliver what the spool holds, in order, then the new event;
 * whatever cannot be delivered within the budget is spooled behind the rest.
 */
export async function runHook(o: HookRunOptions): Promise<HookOutcome> {
  const deliveryDeadline = o.deadline - SPOOL_RESERVE_MS;
  const waitMs = o.lockWaitMs ?? Math.max(0, Math.min(250, (deliveryDeadline - o.now()) / 4));
  let lock: HeldLock | null;
  try {
    const got = await acquireSpoolLock({ spool: o.spool, now: o.now, waitMs, ...(o.sleep ? { sleep: o.sleep } : {}) });
    if (!got.lock) return spoolEvent(o, `a flush (pid ${got.heldBy ?? '?'}) holds the spool lock`);
    lock = got.lock;
  } catch (error) {
    if (!(error instanceof SpoolError)) throw error;
    return withoutSpool(o, error);
  }

  try {
    let flush: FlushResult;
    try {
      flush = await flushSpool({ spool: o.spool, deliver: o.deliver, log: o.log, timeoutMs: o.timeoutMs, now: o.now, deadline: deliveryDeadline });
    } catch (error) {
      if (!(error instanceof SpoolError)) throw error;
      o.log('error', `spool flush failed: ${error.message}`, { code: error.code });
      return spoolEvent(o, 'the spool flush failed');
    }
    logFlush(o.log, flush);
    if (flush.remaining > 0) {
      const why = flush.stopped === 'retryable' ? `older events wait in the spool (${flush.reason})` : 'older events wait in the spool (time budget spent)';
      return withFlush(spoolEvent(o, why), flush);
    }

    const timeoutMs = attemptTimeout(o.timeoutMs, o.now, deliveryDeadline);
    if (timeoutMs < MIN_ATTEMPT_MS) return withFlush(spoolEvent(o, 'time budget spent'), flush);
    const { event } = o;
    const result = await o.deliver(event, { timeoutMs, spoolDepth: 0 });
    if (result.ok) {
      o.log('info', 'delivered', { eventId: event.eventId, action: event.action, duid: event.duid, status: result.status });
      return withFlush({ outcome: 'delivered' }, flush);
    }
    if (result.retryable) return withFlush(spoolEvent(o, describeFailure(result)), flush);
    return withFlush(rejectNew(o, result), flush);
  } finally {
    lock.release();
  }
}

function spoolEvent(o: HookRunOptions, why: string): HookOutcome {
  const { event } = o;
  try {
    const file = o.spool.put(event);
    o.log('warn', `spooled: ${why}`, { eventId: event.eventId, action: event.action, duid: event.duid, file, depth: o.spool.depth() });
    return { outcome: 'spooled', file, why };
  } catch (error) {
    if (!(error instanceof SpoolError)) throw error;
    return lost(o, `${why}, and ${error.message}`, error.code);
  }
}

/** The spool cannot be locked (unwritable, missing parent…): try to spool anyway, else deliver directly if nothing older waits. */
async function withoutSpool(o: HookRunOptions, error: SpoolError): Promise<HookOutcome> {
  o.log('error', `spool unusable: ${error.message}`, { code: error.code });
  try {
    const file = o.spool.put(o.event);
    o.log('warn', 'spooled without the lock', { eventId: o.event.eventId, file });
    return { outcome: 'spooled', file, why: error.message };
  } catch {
    /* as expected: fall through */
  }
  let waiting: number;
  try {
    waiting = o.spool.depth();
  } catch {
    waiting = -1;
  }
  if (waiting !== 0) return lost(o, `spool unusable and ${waiting < 0 ? 'unreadable' : `${waiting} older events wait in it`}: delivering this one first would reorder them`, error.code);
  const timeoutMs = attemptTimeout(o.timeoutMs, o.now, o.deadline);
  if (timeoutMs < MIN_ATTEMPT_MS) return lost(o, 'spool unusable and no time left to deliver', error.code);
  const result = await o.deliver(o.event, { timeoutMs, spoolDepth: 0 });
  if (result.ok) {
    o.log('info', 'delivered (without spool)', { eventId: o.event.eventId, action: o.event.action, duid: o.event.duid, status: result.status });
    return { outcome: 'delivered' };
  }
  return lost(o, `spool unusable and not delivered: ${describeFailure(result)}`, error.code);
}

function rejectNew(o: HookRunOptions, result: Extract<DeliveryResult, { ok: false }>): HookOutcome {
  const { event } = o;
  let file: string | null = null;
  try {
    file = o.spool.rejectEvent(event);
  } catch (error) {
    if (!(error instanceof SpoolError)) throw error;
  }
  o.log('error', `orchestrator refused the event (${describeFailure(result)}): ${file ? `kept in ${file}` : 'and it could not be kept in rejected/'}; it will not be retried`, {
    eventId: event.eventId, action: event.action, duid: event.duid, status: result.status, file, ...(file ? {} : { event }),
  });
  return { outcome: 'rejected', file };
}

/** Loud, with the whole event in the line: the log is its last copy. */
function lost(o: HookRunOptions, why: string, code: string): HookOutcome {
  o.log('error', `event lost: ${why}`, { code, eventId: o.event.eventId, event: o.event });
  return { outcome: 'lost', why };
}

function logFlush(log: Log, flush: FlushResult): void {
  if (flush.delivered > 0 || flush.rejected > 0) {
    log('info', 'spool flushed', { delivered: flush.delivered, rejected: flush.rejected, remaining: flush.remaining });
  }
  if (flush.stopped === 'retryable') log('warn', `spool not flushed: ${flush.reason}`, { remaining: flush.remaining });
}

function withFlush(outcome: HookOutcome, flush: FlushResult): HookOutcome {
  return flush.delivered > 0 || flush.rejected > 0 || flush.remaining > 0 ? { ...outcome, flush } : outcome;
}

function attemptTimeout(timeoutMs: number, now: () => number, deadline: number | undefined): number {
  return deadline === undefined ? timeoutMs : Math.min(timeoutMs, Math.floor(deadline - now()));
}

export function describeFailure(result: Extract<DeliveryResult, { ok: false }>): string {
  return result.status ? `HTTP ${result.status}: ${result.reason}` : result.reason;
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
