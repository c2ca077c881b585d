import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ClientRecord } from '../store/types.js';

/**
 * Device address pinning, as the original did with dhcp-hostsfile: one file
 * per device in a dnsmasq `dhcp-hostsdir`, holding `id:DUID,[ADDRESS]`
 * (dnsmasq(8), --dhcp-host for DHCPv6), so the device gets the same address
 * on its next lease. dnsmasq re-reads a hostsdir when a file changes (inotify);
 * with `pidFile` it is also sent SIGHUP, for setups that use dhcp-hostsfile.
 */
export class HostsPinner {
  readonly #dir: string;
  readonly #pidFile: string | undefined;
  readonly #log: Logger;

  constructor(options: { dir: string; pidFile?: string; log: Logger }) {
    this.#dir = options.dir;
    this.#pidFile = options.pidFile;
    this.#log = options.log;
    mkdirSync(this.#dir, { recursive: true, mode: 0o755 });
  }

  /** Write the client's pin if it changed. DUID and address were validated at the edge; the file name is the client id (hex). */
  pin(client: Pick<ClientRecord, 'id' | 'duid' | 'address'>): void {
    if (!/^[0-9a-f]{20}$/.test(client.id)) throw new Error(`not a client id: ${client.id}`);
    const file = join(this.#dir, client.id);
    const line = `id:${client.duid},[${client.address}]\n`;
    try {
      if (readFileSync(file, 'utf8') === line) return;
    } catch {
      /* not pinned yet */
    }
    // Atomic: dnsmasq never reads a half-written file.
    const temporary = join(this.#dir, `.${client.id}.tmp`);
    writeFileSync(temporary, line, { mode: 0o644 });
    renameSync(temporary, file);
    this.#log.info({ client: client.id, address: client.address }, 'device address pinned');
    this.#signal();
  }

  #signal(): void {
    if (!this.#pidFile) return;
    try {
      const pid = Number(readFileSync(this.#pidFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 1) process.kill(pid, 'SIGHUP');
    } catch (error) {
      this.#log.warn({ err: error, pidFile: this.#pidFile }, 'could not signal dnsmasq to re-read its hosts');
    }
  }
}
