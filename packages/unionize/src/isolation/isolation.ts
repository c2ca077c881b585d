import { runCommand, type CommandRunner } from '../attach/run-command.js';
import type { Egress, IsolationMode } from '../config.js';
import { buildRuleset, openRuleset } from './ruleset.js';

/**
 * Isolation on this docker host: which devices may reach which containers,
 * kept in memory by container name and written to the kernel as one nftables
 * ruleset (ruleset.ts), replaced whole each time it changes. Writes are
 * serialised and each writes what is current then, so the last one to finish
 * holds the latest state.
 */

export interface IsolationEntry {
  /** Device addresses allowed to reach the container (and the only ones it reaches beyond its egress). */
  devices: readonly string[];
  /** The container's address on the bridge, null while unknown (DHCP lease pending). */
  container: string | null;
  /** Host end of its veth on the bridge. */
  port: string;
}

export interface IsolationOptions {
  mode: IsolationMode;
  /** The containers' default gateway (`[network] gateway`). */
  gateway: string;
  egress: Egress;
  /** nft executable; default `nft`. */
  nft?: string;
  run?: CommandRunner;
}

const sameEntry = (a: IsolationEntry, b: IsolationEntry) =>
  a.container === b.container && a.port === b.port && a.devices.length === b.devices.length && a.devices.every((d, i) => d === b.devices[i]);

export class Isolation {
  readonly mode: IsolationMode;
  readonly #gateway: string;
  readonly #egress: Egress;
  readonly #nft: string;
  readonly #run: CommandRunner;
  readonly #entries = new Map<string, IsolationEntry>();
  #writing: Promise<void> = Promise.resolve();
  /** The kernel may not hold the current entries: the last write failed, or none was made yet. */
  #stale = true;
  #batching = false;
  /** nft runs that failed since start (the metrics). */
  writeFailures = 0;

  constructor(options: IsolationOptions) {
    this.mode = options.mode;
    this.#gateway = options.gateway;
    this.#egress = options.egress;
    this.#nft = options.nft ?? 'nft';
    this.#run = options.run ?? ((command) => runCommand(command));
  }

  get filtering(): boolean {
    return this.mode === 'filter';
  }

  entry(name: string): IsolationEntry | undefined {
    return this.#entries.get(name);
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** (device, container) pairs allowed now: what the table holds once written. */
  pairCount(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.container !== null) n += e.devices.length;
    return n;
  }

  /** Record what a container may be reached from; writes the ruleset when that changed. */
  async set(name: string, entry: IsolationEntry): Promise<void> {
    const known = this.#entries.get(name);
    const normalised = { ...entry, devices: [...new Set(entry.devices.map((d) => d.toLowerCase()))].sort() };
    if (known && sameEntry(known, normalised) && !this.#stale) return;
    this.#entries.set(name, normalised);
    if (this.filtering && !this.#batching) await this.write();
  }

  /** The container is going: its device loses access before it does. */
  async forget(name: string): Promise<void> {
    if (!this.#entries.delete(name) && !this.#stale) return;
    if (this.filtering && !this.#batching) await this.write();
  }

  /** Changes made by `fn` are written once, by the caller's next write(), not one by one. */
  async batch(fn: () => Promise<unknown>): Promise<void> {
    this.#batching = true;
    try {
      await fn();
    } finally {
      this.#batching = false;
    }
  }

  /** The ruleset for the current entries (the open one in mode open). */
  ruleset(): string {
    if (!this.filtering) return openRuleset();
    const entries = [...this.#entries.values()];
    return buildRuleset({
      gateway: this.#gateway,
      egress: this.#egress,
      pairs: entries.flatMap((e) => (e.container === null ? [] : e.devices.map((device) => ({ device, container: e.container! })))),
      ports: entries.map((e) => e.port),
    });
  }

  /** Replace the tables with what is current once the writes before this one are done; rejects with nft's stderr. */
  write(): Promise<void> {
    this.#stale = true;
    const next = this.#writing.catch(() => undefined).then(async () => {
      const input = this.ruleset();
      this.#stale = true;
      try {
        await this.#run({ file: this.#nft, args: ['-f', '-'], input });
      } catch (error) {
        this.writeFailures++;
        throw error;
      }
      // Entries changed while nft ran: the write queued by that change brings them.
      if (input === this.ruleset()) this.#stale = false;
    });
    this.#writing = next;
    return next;
  }
}
