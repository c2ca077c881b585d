import { watch, type FSWatcher } from 'node:fs';
import type { DeliverFn, DeliveryResult } from './deliver.js';
import type { Log } from './log.js';
import type { SourceValidation } from './sav.js';
import { SpoolError, type Spool } from './spool.js';

/** `orchestrator-hook --flush --interval S`: the spool's one reader, delivering it in order. */
export interface FlusherOptions {
  spool: Spool;
  /** Called each round, so a rotated key or CA is picked up without a restart. */
  makeDeliver: () => DeliverFn;
  log: Log;
  /** Per delivery. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** [sav]: shown each spooled call before it is delivered. */
  sav?: SourceValidation;
}

export interface FlushResult {
  delivered: number;
  rejected: number;
  /** Calls still spooled when it stopped. */
  remaining: number;
  stopped: null | 'retryable' | 'aborted';
  /** Why the delivery that stopped it failed. */
  reason?: string;
  /** The HTTP status of that failure, when there was an answer. */
  status?: number;
}

export type RoundResult = FlushResult | { error: string };

/** One round over the spool. Never throws for spool or config trouble: it reports it. */
export async function flushRound(o: FlusherOptions): Promise<RoundResult> {
  // Before delivery and whatever becomes of it: a missing key file or a down orchestrator does not hold back a device's address.
  await o.sav?.sync(o.spool);
  let deliver: DeliverFn;
  try {
    deliver = o.makeDeliver();
  } catch (error) {
    return { error: (error as Error).message };
  }
  try {
    for (const name of o.spool.removeStaleTemp()) o.log('warn', `removed a temp file left by a crashed writer: ${name}`);
    for (const name of o.spool.strays()) {
      const file = o.spool.reject(name, 'not a spooled call');
      o.log('warn', `not a spooled call (the script names its calls <ms>-<pid>-<event id>.call): moved ${name} to ${file}`, { file });
    }
    return await flushSpool({ ...o, deliver });
  } catch (error) {
    if (error instanceof SpoolError) return { error: error.message };
    throw error;
  }
}

/**
 * Deliver the spool oldest first. A retryable failure stops it (order per
 * client must hold, so nothing may overtake the call that failed); a refusal
 * moves that call to rejected/ and goes on. Calls spooled meanwhile are
 * picked up before it returns.
 */
export async function flushSpool(o: Omit<FlusherOptions, 'makeDeliver'> & { deliver: DeliverFn }): Promise<FlushResult> {
  let delivered = 0;
  let rejected = 0;
  /** In rejected/, before this round and during it: reported with each delivery. */
  const setAsideBefore = o.spool.rejectedCount();
  const stop = (stopped: FlushResult['stopped'], reason?: string, status?: number): FlushResult => ({
    delivered, rejected, remaining: o.spool.depth(), stopped,
    ...(reason === undefined ? {} : { reason }), ...(status === undefined ? {} : { status }),
  });
  for (;;) {
    const names = o.spool.list();
    await o.sav?.sync(o.spool, names);
    if (names.length === 0) return { delivered, rejected, remaining: 0, stopped: null };
    for (const [index, name] of names.entries()) {
      if (o.signal?.aborted) return stop('aborted');
      const read = o.spool.read(name);
      if (read.ok === 'ignored') {
        o.spool.remove(name);
        o.log('info', `ignored: ${read.reason}`, { file: name });
        continue;
      }
      if (!read.ok) {
        const file = o.spool.reject(name, `not a lease event: ${read.reason}`);
        rejected++;
        o.log('error', `spooled file is not a lease event (${read.reason}): moved to ${file}`, { file });
        continue;
      }
      const { event } = read;
      for (const warning of read.warnings ?? []) o.log('warn', warning, { eventId: event.eventId });
      // Depth = calls still waiting behind this one, so the last one of a drained spool reports 0.
      const result = await o.deliver(event, { timeoutMs: o.timeoutMs, spoolDepth: names.length - index - 1, rejected: setAsideBefore + rejected });
      if (result.ok) {
        o.spool.remove(name);
        delivered++;
        continue;
      }
      if (result.retryable) return stop('retryable', describeFailure(result), result.status);
      const file = o.spool.reject(name, `refused by the orchestrator: ${describeFailure(result)}`);
      rejected++;
      o.log('error', `orchestrator refused a spooled event (${describeFailure(result)}): moved to ${file}; it will not be retried`, {
        eventId: event.eventId, action: event.action, duid: event.duid, status: result.status, file,
      });
    }
  }
}

export function describeFailure(result: Extract<DeliveryResult, { ok: false }>): string {
  return result.status ? `HTTP ${result.status}: ${result.reason}` : result.reason;
}

export function isAuthOrClockStatus(status: number | undefined): boolean {
  return status === 401 || status === 403;
}

/** Repeated "orchestrator unavailable" lines are logged at most this often. */
const REPEAT_LOG_MS = 5 * 60_000;
/** After a failed round the next one waits this long, doubling up to the interval. */
export const FIRST_RETRY_MS = 1000;

/**
 * Flush whenever something is spooled (the directory is watched) and at least
 * every `intervalMs`, until `signal` aborts. Holds the spool's flusher lock
 * for its whole life, so the spool has one reader (dnsmasq/orchestrator-hook.sh
 * warns while that lock names no live process). Throws SpoolError when
 * another flusher holds it.
 */
export async function runFlusher(o: FlusherOptions & { intervalMs: number; now: () => number; signal: AbortSignal }): Promise<void> {
  const held = o.spool.tryFlusherLock();
  if (!held.ok) {
    throw new SpoolError('HOOK_SPOOL_UNWRITABLE', `another flusher (pid ${held.heldBy ?? '?'}) delivers spool ${o.spool.dir}`);
  }
  const wake = watchSpool(o.spool.dir, o.log);
  try {
    await flushLoop(o, wake);
  } finally {
    wake.close();
    held.lock.release();
  }
}

async function flushLoop(o: FlusherOptions & { intervalMs: number; now: () => number; signal: AbortSignal }, wake: SpoolWatch): Promise<void> {
  let failingSince: number | null = null;
  let lastLogged = -Infinity;
  let retryMs = FIRST_RETRY_MS;
  o.log('info', 'flusher started', { dir: o.spool.dir, intervalMs: o.intervalMs, watching: wake.watching, depth: safeDepth(o.spool) });
  while (!o.signal.aborted) {
    wake.reset();
    const round = await flushRound(o);
    const now = o.now();
    let failed = true;
    if ('error' in round) {
      o.log('error', `flush failed: ${round.error}`);
    } else {
      if (round.delivered > 0 || round.rejected > 0) {
        o.log('info', 'spool flushed', { delivered: round.delivered, rejected: round.rejected, remaining: round.remaining });
      }
      if (round.stopped === 'retryable') {
        if (failingSince === null || now - lastLogged >= REPEAT_LOG_MS) {
          // 401/403: the hook's key or clock is wrong, which no waiting mends: an error, still retried, never dropped.
          const level = isAuthOrClockStatus(round.status) ? 'error' : 'warn';
          o.log(level, `spool not flushed: ${round.reason}`, { remaining: round.remaining });
          lastLogged = now;
        }
        failingSince ??= now;
      } else {
        failed = false;
        if (failingSince !== null && round.stopped === null) {
          o.log('info', 'orchestrator reachable again: spool empty', { failedForMs: Math.round(now - failingSince) });
          failingSince = null;
        }
      }
    }
    if (failed) {
      // Back off, new events or not: they wait behind the one that failed anyway.
      await sleep(Math.min(retryMs, o.intervalMs), o.signal);
      retryMs = Math.min(retryMs * 2, o.intervalMs);
    } else {
      retryMs = FIRST_RETRY_MS;
      await wake.next(o.intervalMs, o.signal);
    }
  }
  o.log('info', 'flusher stopped', { depth: safeDepth(o.spool) });
}

interface SpoolWatch {
  /** False when the directory cannot be watched (then only the interval drives rounds). */
  readonly watching: boolean;
  /** Forget what was seen so far (a round is about to list the directory). */
  reset(): void;
  /** Resolve when an entry appeared since the last reset, or after `ms`, or on abort. */
  next(ms: number, signal: AbortSignal): Promise<void>;
  close(): void;
}

/** inotify on the spool directory: a new entry (renamed into place by a writer) wakes the flusher at once. */
function watchSpool(dir: string, log: Log): SpoolWatch {
  let seen = false;
  let notify: (() => void) | null = null;
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dir, { persistent: false }, (_type, name) => {
      // Temp files, locks and rejected/ are not work.
      if (name !== null && !/^[0-9]/.test(String(name))) return;
      seen = true;
      notify?.();
    });
    watcher.on('error', (error) => {
      log('warn', `spool watch failed: ${error.message}; flushing every interval only`);
      watcher?.close();
    });
  } catch (error) {
    log('warn', `cannot watch spool ${dir}: ${(error as Error).message}; flushing every interval only`);
  }
  return {
    watching: watcher !== null,
    reset: () => {
      seen = false;
    },
    next: (ms, signal) => {
      if (seen || signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          notify = null;
          resolve();
        }
        notify = done;
        signal.addEventListener('abort', done);
      });
    },
    close: () => watcher?.close(),
  };
}

function safeDepth(spool: Spool): number | null {
  try {
    return spool.depth();
  } catch {
    return null;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
