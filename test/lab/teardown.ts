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
/** When the first SIGINT/SIGTERM came (ms since the epoch), or undefined. */
let signalledAt: number | undefined;

/**
 * A repeated signal within this time is the same request, not an impatient
 * second one: `npm run demo` passes each signal on to the demo, so Ctrl-C on
 * a terminal, or a signal sent to npm's process group, arrives twice.
 */
export const REPEATED_SIGNAL_MS = 3000;

function onSignal(signal: NodeJS.Signals): void {
  if (signalledAt !== undefined) {
    if (Date.now() - signalledAt < REPEATED_SIGNAL_MS) return;
    // A second Ctrl-C, later: do the synchronous part and leave.
    process.stderr.write(`lab: ${signal} again: stopping at once\n`);
    for (const entry of active) entry.emergency();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  }
  signalledAt = Date.now();
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
