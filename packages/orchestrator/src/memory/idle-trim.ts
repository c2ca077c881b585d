import type { Logger } from 'pino';
import { outsideRequests } from '../context/request-context.js';

/**
 * A full collection that also gives V8's pooled pages back to the system.
 *
 * Node 24's V8 keeps the 256 KB pages a burst of garbage made in a pool for
 * the isolate's lifetime: after 20,000 lease events the heap holds 25 MB
 * live, V8 counts 20-40 MB, and 60-90 MB stay resident (README, Performance).
 * An ordinary collection (or V8's own memory reducer) leaves the pool alone;
 * a last-resort one (what V8 does before giving up on memory) empties it.
 * That needs `gc`, which the unit's `--expose-gc` provides; without it this
 * is undefined and nothing is trimmed.
 */
export function lastResortGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: (options?: object) => unknown }).gc;
  if (typeof gc !== 'function') return undefined;
  return () => {
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  };
}

/** Resident memory of this process in MB (what the RSS figures measure). */
function rssMb(): number {
  return Math.round(process.memoryUsage.rss() / 104857.6) / 10;
}

export interface IdleTrimOptions {
  /** How long without activity (lease events applied) before a trim. */
  idleMs: number;
  gc: () => void;
  /** Run first: what gives back memory held for what is gone (the store's compactMemory). */
  compact?: () => Promise<void>;
  log: Logger;
  /** Told of each trim: its duration in seconds. */
  onTrim?: (seconds: number) => void;
}

/**
 * Trim memory once activity stops: each `noteActivity()` (a lease event
 * applied) restarts an idle timer, and when it runs out a last-resort
 * collection runs once. It pauses the event loop (tens of milliseconds at
 * 10,000 clients, logged), so it waits for a quiet moment, and runs again
 * only after new activity: an idle daemon is never collected twice.
 */
export class IdleTrim {
  readonly #options: IdleTrimOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: IdleTrimOptions) {
    this.#options = options;
  }

  noteActivity(): void {
    if (this.#timer) {
      this.#timer.refresh();
      return;
    }
    // Set outside the event's work, so that the trim's log line is not taken for the event's.
    this.#timer = outsideRequests(() => setTimeout(() => void this.#trim(), this.#options.idleMs));
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #trim(): Promise<void> {
    this.#timer = undefined;
    const before = rssMb();
    const started = performance.now();
    try {
      await this.#options.compact?.();
    } catch (error) {
      this.#options.log.warn({ err: error }, 'memory trim: compacting the store failed; collecting anyway');
    }
    try {
      this.#options.gc();
    } catch (error) {
      this.#options.log.warn({ err: error }, 'memory trim: the collection failed; trying again after the next activity');
      return;
    }
    const seconds = (performance.now() - started) / 1000;
    this.#options.log.info({ ms: Math.round(seconds * 1000), rssMbBefore: before, rssMbAfter: rssMb() }, 'memory trimmed after activity stopped');
    this.#options.onTrim?.(seconds);
  }
}
