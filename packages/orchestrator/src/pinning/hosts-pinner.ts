import { hash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BanTarget } from '@unionize/protocol';
import type { ClientRecord } from '../store/types.js';
import type { DnsmasqReload } from './dnsmasq-reload.js';

/** What a pin is made of: the client id names its file. */
export type PinnedClient = Pick<ClientRecord, 'id' | 'duid' | 'address'>;

const CLIENT_FILE = /^[0-9a-f]{20}$/;
const BAN_FILE = /^ban-(mac|duid)-[0-9a-f]{20}$/;
const TEMPORARY_FILE = /^\..*\.tmp$/;

/**
 * Device address pinning, as the original did with dhcp-hostsfile: one file
 * per live device in a dnsmasq `dhcp-hostsdir`, holding `id:DUID,[ADDRESS]`
 * (dnsmasq(8), --dhcp-host for DHCPv6), so the device gets the same address
 * on its next lease while its client lives; the file goes when the client is
 * gone. Beside the pins, one file per banned device: `id:DUID,ignore` or
 * `MAC,ignore`, so dnsmasq no longer answers it.
 *
 * dnsmasq reads a new file in a hostsdir by itself (inotify), but forgets a
 * removed entry (a pin released or moved, a ban lifted) only when it re-reads
 * the directory: after each such change `reload` is asked for one (it
 * coalesces them); without it, removed pins and bans stay in force in the
 * running dnsmasq until it restarts.
 */
export class HostsPinner {
  readonly #dir: string;
  readonly #reload: DnsmasqReload | undefined;
  readonly #log: Logger;

  constructor(options: { dir: string; reload?: DnsmasqReload; log: Logger }) {
    this.#dir = options.dir;
    this.#reload = options.reload;
    this.#log = options.log;
    mkdirSync(this.#dir, { recursive: true, mode: 0o755 });
  }

  /** Write the client's pin if it changed. DUID and address were validated at the edge; the file name is the client id (hex). */
  pin(client: PinnedClient): void {
    const written = this.#writePin(client);
    if (written) {
      this.#log.info({ client: client.id, address: client.address }, 'device address pinned');
      if (written === 'changed') this.#reload?.request();
    }
  }

  /** Remove the client's pin, if it has one. */
  unpin(clientId: string): void {
    if (!CLIENT_FILE.test(clientId)) throw new Error(`not a client id: ${clientId}`);
    if (this.#remove(clientId)) {
      this.#log.info({ client: clientId }, 'device address pin released');
      this.#reload?.request();
    }
  }

  /** Write the ignore entry of a banned device. */
  ban(target: BanTarget): void {
    if (this.#write(banFileOf(target), banLineOf(target)) === 'changed') this.#reload?.request();
  }

  /** Remove the ignore entry of a device no longer banned. */
  unban(target: BanTarget): void {
    if (this.#remove(banFileOf(target))) this.#reload?.request();
  }

  /**
   * Make the directory hold exactly these pins and bans (at start: clients
   * that went while the orchestrator was down, bans that ended); files of
   * other names are left alone. `keepPins`: remove no pin (the in-memory
   * store knows no client at start). Returns how many files were written and removed.
   */
  sync(pins: Iterable<PinnedClient>, bans: Iterable<BanTarget>, options: { keepPins?: boolean } = {}): { written: number; removed: number } {
    const wanted = new Set<string>();
    let written = 0;
    let removed = 0;
    let changed = false;
    const count = (result: Written) => {
      if (result) written++;
      if (result === 'changed') changed = true;
    };
    for (const client of pins) {
      wanted.add(client.id);
      count(this.#writePin(client));
    }
    for (const target of bans) {
      wanted.add(banFileOf(target));
      count(this.#write(banFileOf(target), banLineOf(target)));
    }
    for (const name of readdirSync(this.#dir)) {
      const ours = (CLIENT_FILE.test(name) && !options.keepPins) || BAN_FILE.test(name) || TEMPORARY_FILE.test(name);
      if (ours && !wanted.has(name) && this.#remove(name)) removed++;
    }
    if (changed || removed > 0) this.#reload?.request();
    return { written, removed };
  }

  #writePin(client: PinnedClient): Written {
    if (!CLIENT_FILE.test(client.id)) throw new Error(`not a client id: ${client.id}`);
    return this.#write(client.id, `id:${client.duid},[${client.address}]\n`);
  }

  /** Write `line` to the file `name` unless it holds it already. */
  #write(name: string, line: string): Written {
    const file = join(this.#dir, name);
    let result: Written = 'new';
    try {
      if (readFileSync(file, 'utf8') === line) return false;
      result = 'changed';
    } catch {
      /* not written yet */
    }
    // Atomic: dnsmasq never reads a half-written file.
    const temporary = join(this.#dir, `.${name}.tmp`);
    writeFileSync(temporary, line, { mode: 0o644 });
    renameSync(temporary, file);
    return result;
  }

  /** True when there was a file to remove. */
  #remove(name: string): boolean {
    try {
      rmSync(join(this.#dir, name));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

}

/** What a write did: made a new file (dnsmasq reads it by itself), changed one (it needs a reload), or nothing. */
type Written = 'new' | 'changed' | false;

/** A ban's file: named by a hash of the device (a DUID may be longer than a file name can be). */
function banFileOf(target: BanTarget): string {
  return `ban-${target.kind}-${hash('sha256', target.value, 'hex').slice(0, 20)}`;
}

/** dnsmasq(8) --dhcp-host: `ignore` tells it never to answer the device. MAC and DUID were validated (parseBanTarget). */
function banLineOf(target: BanTarget): string {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2})+$/.test(target.value)) throw new Error(`not a MAC or DUID: ${target.value.slice(0, 64)}`);
  return target.kind === 'mac' ? `${target.value},ignore\n` : `id:${target.value},ignore\n`;
}

/** The pins the directory is to hold: every client not gone whose device is not banned. */
export function livePins(clients: Iterable<ClientRecord>, banned: (client: ClientRecord) => boolean): PinnedClient[] {
  const pins: PinnedClient[] = [];
  for (const client of clients) if (client.role === 'device' && client.state !== 'gone' && !banned(client)) pins.push(client);
  return pins;
}
