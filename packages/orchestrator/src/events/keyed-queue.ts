import { AsyncResource } from 'node:async_hooks';

interface Task {
  work: () => Promise<void>;
  context: AsyncResource;
}

/**
 * Runs tasks one at a time per key, in the order pushed, and different keys in
 * parallel up to `concurrency`. Per-client ordering of lease events rests on it.
 */
export class KeyedQueue {
  readonly #concurrency: number;
  readonly #onError: (key: string, error: unknown) => void;
  readonly #pending = new Map<string, Task[]>();
  /** Keys with work waiting for a free slot, in arrival order. */
  readonly #ready: string[] = [];
  readonly #running = new Set<string>();
  /** Tasks in #pending, counted as they come and go: depth is asked for at every task's end. */
  #waiting = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(options: { concurrency: number; onError: (key: string, error: unknown) => void }) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new Error('KeyedQueue concurrency must be a positive integer');
    }
    this.#concurrency = options.concurrency;
    this.#onError = options.onError;
  }

  push(key: string, work: () => Promise<void>): void {
    // A task runs in the async context it was pushed from (its request id),
    // not in that of whichever task happened to free the slot. A plain
    // AsyncResource rather than AsyncResource.bind(), which in node 20 also
    // makes a deprecation wrapper and property descriptors for each call.
    const task: Task = { work, context: new AsyncResource('KeyedQueueTask') };
    this.#waiting++;
    const tasks = this.#pending.get(key);
    if (tasks) {
      tasks.push(task);
      return;
    }
    this.#pending.set(key, [task]);
    if (!this.#running.has(key)) this.#ready.push(key);
    this.#pump();
  }

  /** Tasks waiting or running. */
  get depth(): number {
    return this.#running.size + this.#waiting;
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #pump(): void {
    while (this.#running.size < this.#concurrency && this.#ready.length > 0) {
      const key = this.#ready.shift()!;
      this.#running.add(key);
      void this.#drain(key);
    }
    if (this.depth === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  async #drain(key: string): Promise<void> {
    for (;;) {
      const tasks = this.#pending.get(key);
      const task = tasks?.shift();
      if (!task) {
        this.#pending.delete(key);
        break;
      }
      this.#waiting--;
      try {
        await task.context.runInAsyncScope(task.work);
      } catch (error) {
        this.#onError(key, error);
      }
    }
    this.#running.delete(key);
    this.#pump();
  }
}
