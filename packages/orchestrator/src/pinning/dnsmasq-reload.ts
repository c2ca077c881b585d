import { readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';

/**
 * Asks the device dnsmasq to re-read its dhcp-hostsdir, which it must do
 * before a removed pin or a lifted ban stops applying (dnsmasq(8): files
 * added to a hostsdir are read at once, removals only at SIGHUP). Two ways:
 *
 * - `requestFile`: the orchestrator (unprivileged) rewrites this file; the
 *   systemd path unit dnsmasq-devnet-reload.path watches it and reloads
 *   dnsmasq-devnet.service (ExecReload sends SIGHUP). No right to signal root.
 * - `pidFile`: SIGHUP to the pid in it, for an orchestrator allowed to signal
 *   that dnsmasq (the same user, or the lab).
 *
 * Requests are coalesced: the first reloads at once, any made within
 * `intervalMs` after it make one more reload at the end of that interval, so
 * 500 devices leaving at once cost two reloads, not 500.
 */
export class DnsmasqReload {
  readonly #requestFile: string | undefined;
  readonly #pidFile: string | undefined;
  readonly #intervalMs: number;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #pending = false;
  #reloads = 0;

  constructor(options: { requestFile?: string; pidFile?: string; intervalMs: number; log: Logger }) {
    this.#requestFile = options.requestFile;
    this.#pidFile = options.pidFile;
    this.#intervalMs = options.intervalMs;
    this.#log = options.log;
  }

  /** How many reloads were asked of dnsmasq so far. */
  get reloads(): number {
    return this.#reloads;
  }

  request(): void {
    if (this.#timer) {
      this.#pending = true;
      return;
    }
    this.#reload();
    this.#timer = setTimeout(() => this.#settle(), this.#intervalMs);
  }

  /** At shutdown: a request still waiting is made now. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending) {
      this.#pending = false;
      this.#reload();
    }
  }

  #settle(): void {
    this.#timer = undefined;
    if (!this.#pending) return;
    this.#pending = false;
    this.request();
  }

  #reload(): void {
    this.#reloads++;
    if (this.#requestFile) {
      try {
        // The path unit triggers on the close after a write (PathChanged=).
        writeFileSync(this.#requestFile, `${new Date().toISOString()} ${this.#reloads}\n`, { mode: 0o644 });
      } catch (error) {
        this.#log.warn({ err: error, file: this.#requestFile }, 'could not ask for a dnsmasq reload');
      }
    }
    if (this.#pidFile) {
      try {
        const pid = Number(readFileSync(this.#pidFile, 'utf8').trim());
        if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no pid in ${this.#pidFile}`);
        process.kill(pid, 'SIGHUP');
      } catch (error) {
        this.#log.warn({ err: error, pidFile: this.#pidFile }, 'could not signal dnsmasq to re-read its hosts');
      }
    }
  }
}
