/**
 * A task run now, then `intervalMs` after each run ends (never two at once),
 * until stopped: the reconciler's passes, the agents' health checks, the
 * pools' telling. The timer does not keep the process alive.
 */
export class Repeat {
  readonly #task: () => Promise<unknown>;
  readonly #onError: (error: unknown) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(task: () => Promise<unknown>, onError: (error: unknown) => void) {
    this.#task = task;
    this.#onError = onError;
  }

  start(intervalMs: number): void {
    const tick = () => {
      this.#task()
        .catch(this.#onError)
        .finally(() => {
          if (this.#timer) this.#timer = setTimeout(tick, intervalMs).unref();
        });
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
