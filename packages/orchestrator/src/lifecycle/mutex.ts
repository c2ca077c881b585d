/**
 * Runs async sections one at a time, in the order asked for. The store is
 * asynchronous: a read-then-decide-then-write over several store calls (quota
 * counts, placement) would otherwise interleave with another client's.
 */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  run<T>(section: () => Promise<T> | T): Promise<T> {
    const result = this.#tail.then(section);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
