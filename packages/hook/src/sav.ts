import { spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { LeaseEvent } from '@unionize/protocol/lease-event';
import type { Log } from './log.js';
import { SAV_SET, SAV_TABLE, leasedPairsOfNftJson, leasedPairsOfState, savRuleset, stateOfLeasedPairs } from './sav-ruleset.js';
import type { Spool } from './spool.js';

/**
 * Source address validation ([sav] in hook.ini): the flusher keeps the
 * nftables table of sav-ruleset.ts in step with dnsmasq's leases.
 *
 * Each spooled call is seen once, when it first shows up in the spool, before
 * and whatever its delivery: an orchestrator that is down or refuses an event
 * neither holds back a device's new address nor keeps a released one open.
 * The pairs live in the kernel's set, so a restarted flusher reads them back
 * from there (`nft -j list set`) and goes on with the calls still spooled.
 * After a reboot the table is gone, and dnsmasq's replay of every lease as
 * `old` at its start does not give the MACs (its lease file has none), so
 * each table written is also saved to `stateFile`, read when the kernel has
 * no table.
 *
 * nft failing never stops or delays delivery: it is logged at error level and
 * counted, and the whole table is written again at the next round.
 */
export interface NftResult {
  code: number;
  stdout: string;
  stderr: string;
}
/** Runs nft with these arguments (no shell), `stdin` written to it. */
export type NftRunner = (args: readonly string[], stdin?: string) => Promise<NftResult>;

export interface SourceValidationOptions {
  /** [sav] ports: the device bridge's ports (names, or prefixes with `*`). */
  ports: readonly string[];
  nft: NftRunner;
  log: Log;
  /** [sav] state_file: the pairs of the last table written, for a start without the table (after a reboot). */
  stateFile: string;
}

export class SourceValidation {
  readonly #ports: readonly string[];
  readonly #nft: NftRunner;
  readonly #log: Log;
  readonly #stateFile: string;
  /** Leased address → the MAC it was leased to. */
  readonly #leased = new Map<string, string>();
  /** Spooled calls already applied (names are unique: <ms>-<pid>-<event id>.call). */
  #seen = new Set<string>();
  /** The kernel's table may differ from #leased: write it at the next sync. */
  #dirty = true;
  #failures = 0;

  constructor(options: SourceValidationOptions) {
    this.#ports = options.ports;
    this.#nft = options.nft;
    this.#log = options.log;
    this.#stateFile = options.stateFile;
  }

  /** nft runs that failed since the start. */
  get failures(): number {
    return this.#failures;
  }

  /** The pairs it holds, address → MAC (tests, logs). */
  get leased(): ReadonlyMap<string, string> {
    return this.#leased;
  }

  /** Take the pairs the kernel holds (from before a restart of the flusher), else those saved (before a reboot); then write the table. */
  async start(): Promise<void> {
    const listed = await this.#run(['-j', 'list', 'set', 'bridge', SAV_TABLE, SAV_SET]);
    let from = 'kernel';
    if (listed?.code === 0) {
      try {
        for (const [address, mac] of leasedPairsOfNftJson(listed.stdout)) this.#leased.set(address, mac);
      } catch (error) {
        this.#fail(`cannot read the kernel's set: ${(error as Error).message}`);
      }
    } else {
      if (listed && !/No such file or directory/.test(listed.stderr)) {
        this.#fail(`cannot list the kernel's set: ${listed.stderr.trim() || `nft exit ${listed.code}`}`);
      }
      from = 'state file';
      this.#readState();
    }
    this.#log('info', 'source validation: started', { ports: this.#ports, leased: this.#leased.size, from });
    await this.#write();
  }

  /** Apply the calls spooled since the last sync (`listed`: the spool's listing the caller is about to deliver), in order; write the table if anything changed (or a write failed before). Never throws. */
  async sync(spool: Spool, listed?: readonly string[]): Promise<void> {
    try {
      const names = listed ?? spool.list();
      const seen = new Set<string>();
      for (const name of names) {
        seen.add(name);
        if (this.#seen.has(name)) continue;
        const read = spool.read(name);
        if (read.ok === true && this.apply(read.event)) this.#dirty = true;
      }
      this.#seen = seen;
    } catch (error) {
      this.#fail(`cannot read the spool: ${(error as Error).message}`);
    }
    if (this.#dirty) await this.#write();
  }

  /** One lease event into the pairs; true when they changed. */
  apply(event: Pick<LeaseEvent, 'action' | 'address' | 'mac'>): boolean {
    const before = this.#leased.get(event.address);
    if (event.action === 'del') return this.#leased.delete(event.address);
    if (event.mac === null) {
      // dnsmasq replays leases at its start without their MAC (its lease file has none): keep what the kernel had.
      if (before === undefined) this.#log('warn', 'source validation: a lease without a MAC is not let through until dnsmasq reports its MAC', { address: event.address });
      return false;
    }
    if (before === event.mac) return false;
    this.#leased.set(event.address, event.mac);
    return true;
  }

  async #write(): Promise<void> {
    let text: string;
    try {
      text = savRuleset(this.#ports, this.#leased);
    } catch (error) {
      this.#fail(`cannot build the table: ${(error as Error).message}`);
      return;
    }
    const result = await this.#run(['-f', '-'], text);
    if (result?.code === 0) {
      if (this.#dirty) this.#log('info', 'source validation: table written', { leased: this.#leased.size });
      this.#dirty = false;
      this.#saveState();
    } else if (result) {
      this.#fail(`nft -f failed: ${result.stderr.trim().slice(0, 500) || `exit ${result.code}`}`);
    }
  }

  #readState(): void {
    let text: string;
    try {
      text = readFileSync(this.#stateFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.#fail(`cannot read ${this.#stateFile}: ${(error as Error).message}`);
      return;
    }
    try {
      for (const [address, mac] of leasedPairsOfState(text)) this.#leased.set(address, mac);
    } catch (error) {
      this.#fail(`${this.#stateFile} is not a saved table: ${(error as Error).message}`);
    }
  }

  /** Atomically (a temp file renamed over it), so a crash leaves the old one or the new one. */
  #saveState(): void {
    const temp = `${this.#stateFile}.tmp`;
    try {
      writeFileSync(temp, stateOfLeasedPairs(this.#leased), { mode: 0o600 });
      renameSync(temp, this.#stateFile);
    } catch (error) {
      this.#fail(`cannot save ${this.#stateFile}: ${(error as Error).message}`);
    }
  }

  async #run(args: readonly string[], stdin?: string): Promise<NftResult | null> {
    try {
      return await this.#nft(args, stdin);
    } catch (error) {
      this.#fail(`cannot run nft: ${(error as Error).message}`);
      return null;
    }
  }

  #fail(reason: string): void {
    this.#failures++;
    this.#dirty = true;
    this.#log('error', `source validation: ${reason}`, { failures: this.#failures });
  }
}

/** nft (the [sav] nft path) as a child process: argument array, no shell, killed after `timeoutMs`. */
export function nftRunner(path: string, timeoutMs = 10_000): NftRunner {
  return (args, stdin) =>
    new Promise((resolve, reject) => {
      const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code, signal) => {
        resolve({ code: code ?? 128, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') || (signal ? `killed by ${signal}` : '') });
      });
      child.stdin.on('error', () => {}); // nft exited before reading: its exit code says why
      child.stdin.end(stdin ?? '');
    });
}
