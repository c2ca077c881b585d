/**
 * Runs tasks one at a time per key, in call order; different keys run in
 * parallel. Two POSTs for one container name must not both create, start or
 * attach it. Keys with nothing queued take no memory.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => done);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  /** Keys with a task running or queued (for tests and metrics). */
  get size(): number {
    return this.#tails.size;
  }
}
