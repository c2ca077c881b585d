import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';

/** Clients forgotten per store call: one transaction each, so a long backlog never holds the store long. */
const PRUNE_BATCH = 1000;

/**
 * Keeps memory and the database bounded ([retention] gone_days): clients
 * gone for longer than that are forgotten, with their transitions. A device
 * that comes back after that is a new client. Runs at start and then on a
 * timer.
 */
export class Retention {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #goneMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { store: Store; clock: Clock; log: Logger; goneDays: number }) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#goneMs = options.goneDays * 86_400_000;
  }

  /** Forget every client gone for longer than gone_days; returns how many. */
  async pruneOnce(): Promise<number> {
    const before = new Date(this.#clock.now().getTime() - this.#goneMs).toISOString();
    let pruned = 0;
    for (;;) {
      const n = await this.#store.pruneGoneClients(before, PRUNE_BATCH);
      pruned += n;
      if (n < PRUNE_BATCH) break;
    }
    if (pruned > 0) this.#log.info({ pruned, goneBefore: before }, 'forgot clients gone for longer than [retention] gone_days');
    return pruned;
  }

  /** pruneOnce() now and every `intervalMs`. */
  start(intervalMs: number): void {
    this.#run();
    this.#timer = setInterval(() => this.#run(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #run(): void {
    this.pruneOnce().catch((error: unknown) => this.#log.error({ err: error }, 'could not prune the clients gone'));
  }
}
