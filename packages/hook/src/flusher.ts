import { watch, type FSWatcher } from 'node:fs';
import type { Log } from './log.js';
import { acquireSpoolLock, flushSpool, type DeliverFn, type FlushResult } from './run-hook.js';
import { SpoolError, type Spool } from './spool.js';

/** `orchestrator-hook --flush [--interval S]`: deliver the spool outside dnsmasq, once or every S seconds. */
export interface FlusherOptions {
  spool: Spool;
  /** Called each round, so a rotated secret or CA is picked up without a restart. */
  makeDeliver: () => DeliverFn;
  log: Log;
  timeoutMs: number;
  now: () => number;
  /** How long one round waits for a hook run to let go of the lock. */
  lockWaitMs?: number;
  /** No delivery runs past this (in `now()` time); none when absent. */
  deadline?: number;
  signal?: AbortSignal;
}

export type RoundResult = FlushResult | { busy: true; heldBy: number | null } | { error: string };

/** One flush under the lock. Never throws for spool or config trouble: it reports it. */
export async function flushRound(o: FlusherOptions): Promise<RoundResult> {
  let deliver: DeliverFn;
  try {
    deliver = o.makeDeliver();
  } catch (error) {
    return { error: (error as Error).message };
  }
  try {
    const got = await acquireSpoolLock({ spool: o.spool, now: o.now, waitMs: o.lockWaitMs ?? 5000 });
    if (!got.lock) return { busy: true, heldBy: got.heldBy };
    try {
      for (const name of o.spool.removeStaleTemp()) o.log('warn', `removed a temp file left by a crashed writer: ${name}`);
      return await flushSpool({
        spool: o.spool, deliver, log: o.log, timeoutMs: o.timeoutMs, now: o.now,
        ...(o.signal ? { signal: o.signal } : {}), ...(o.deadline === undefined ? {} : { deadline: o.deadline }),
      });
    } finally {
      got.lock.release();
    }
  } catch (error) {
    if (error instanceof SpoolError) return { error: error.message };
    throw error;
  }
}

/** Repeated "orchestrator unavailable" lines are logged at most this often. */
const REPEAT_LOG_MS = 5 * 60_000;
/** After a failed round the next one waits this long, doubling up to the interval. */
export const FIRST_RETRY_MS = 1000;

/**
 * Flush whenever something is spooled (the directory is watched) and at least
 * every `intervalMs`, until `signal` aborts. Holds the spool's flusher lock
 * for its whole life: dnsmasq/orchestrator-hook.sh spools and leaves the
 * delivery to it only while that lock names a live process. Throws SpoolError
 * when another flusher holds it.
 */
export async function runFlusher(o: FlusherOptions & { intervalMs: number; signal: AbortSignal }): Promise<void> {
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

async function flushLoop(o: FlusherOptions & { intervalMs: number; signal: AbortSignal }, wake: SpoolWatch): Promise<void> {
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
    } else if ('busy' in round) {
      o.log('debug', `spool lock held by pid ${round.heldBy ?? '?'}: next round`);
    } else {
      if (round.delivered > 0 || round.rejected > 0) {
        o.log('info', 'spool flushed', { delivered: round.delivered, rejected: round.rejected, remaining: round.remaining });
      }
      if (round.stopped === 'retryable') {
        if (failingSince === null || now - lastLogged >= REPEAT_LOG_MS) {
          o.log('warn', `spool not flushed: ${round.reason}`, { remaining: round.remaining });
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
