/**
 * Teardown registry: every resource the lab makes is registered here the
 * moment it exists, and undone in reverse order on a normal stop, when
 * start-up fails half way, and on SIGINT/SIGTERM (Ctrl-C in the demo).
 * A synchronous last resort runs on process exit if nothing else did.
 */

export type LogFn = (line: string) => void;

interface Step {
  label: string;
  fn: () => Promise<void> | void;
}

export class Teardown {
  private readonly steps: Step[] = [];
  private running: Promise<Error[]> | undefined;

  add(label: string, fn: () => Promise<void> | void): void {
    if (this.running) throw new Error(`teardown already running; cannot add ${label}`);
    this.steps.push({ label, fn });
  }

  get size(): number {
    return this.steps.length;
  }

  /** Run every step, last added first; a failing step is logged and the rest still run. */
  run(log: LogFn): Promise<Error[]> {
    this.running ??= (async () => {
      const errors: Error[] = [];
      for (const step of [...this.steps].reverse()) {
        try {
          await step.fn();
        } catch (error) {
          const err = error instanceof Error ? error : new Error(String(error));
          log(`teardown ${step.label}: ${err.message}`);
          errors.push(err);
        }
      }
      return errors;
    })();
    return this.running;
  }
}

export interface SignalCleanup {
  /** Asynchronous, thorough cleanup (the same as a normal stop). */
  cleanup: () => Promise<void>;
  /** Synchronous best effort, for process exit when the async cleanup never ran. */
  emergency: () => void;
}

const active = new Set<SignalCleanup>();
let installed = false;
let signalled = false;

function onSignal(signal: NodeJS.Signals): void {
  if (signalled) {
    // Second Ctrl-C: do the synchronous part and leave.
    for (const entry of active) entry.emergency();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  }
  signalled = true;
  process.stderr.write(`lab: ${signal}: tearing down\n`);
  const all = [...active].map((entry) => entry.cleanup().catch(() => entry.emergency()));
  const deadline = new Promise((resolve) => setTimeout(resolve, 60_000).unref());
  void Promise.race([Promise.all(all), deadline]).finally(() => {
    for (const entry of active) entry.emergency();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

function onExit(): void {
  for (const entry of active) entry.emergency();
}

/** Register a lab for signal and exit cleanup; returns the function that unregisters it. */
export function registerCleanup(entry: SignalCleanup): () => void {
  active.add(entry);
  if (!installed) {
    installed = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', onExit);
  }
  return () => {
    active.delete(entry);
    if (active.size === 0 && installed) {
      installed = false;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', onExit);
    }
  };
}
