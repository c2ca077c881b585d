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
        spool: o.spool, deliver, log: o.log, timeoutMs: o.timeoutMs, now: o.now, ...(o.signal ? { signal: o.signal } : {}),
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

/** Flush every `intervalMs` until `signal` aborts. */
export async function runFlusher(o: FlusherOptions & { intervalMs: number; signal: AbortSignal }): Promise<void> {
  let failingSince: number | null = null;
  let lastLogged = -Infinity;
  o.log('info', 'flusher started', { dir: o.spool.dir, intervalMs: o.intervalMs, depth: safeDepth(o.spool) });
  while (!o.signal.aborted) {
    const round = await flushRound(o);
    const now = o.now();
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
      } else if (failingSince !== null && round.stopped === null) {
        o.log('info', 'orchestrator reachable again: spool empty', { failedForMs: Math.round(now - failingSince) });
        failingSince = null;
      }
    }
    await sleep(o.intervalMs, o.signal);
  }
  o.log('info', 'flusher stopped', { depth: safeDepth(o.spool) });
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
