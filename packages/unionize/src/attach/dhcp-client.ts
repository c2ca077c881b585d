import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { KeyedMutex } from '../util/keyed-mutex.js';
import { runCommand, type Command, type CommandRunner } from './run-command.js';

/**
 * The DHCPv6 client of a DHCP-mode container: the host's ISC dhclient, run in
 * the container's network namespace (nsenter -n, so it keeps the host's
 * files: its config, lease, pid and log live under `<stateDir>/<name>/`).
 *
 * - `-D LL`: DUID-LL from eth1's MAC (RFC 8415 section 11.4), so the DUID is
 *   `00:03:00:01:<mac>` and stable across restarts; dhclient takes the IAID
 *   from the MAC's last four octets. The container bridge's dnsmasq reports
 *   both, and DNSMASQ_MAC, to the hook in role `instance`.
 * - `-nw`: it daemonizes at once; its lease arrives through our script.
 * - Rapid Commit (see clientConf): the lease in about half a second.
 * - It holds the container's namespace: it must be stopped when the container
 *   goes, or the namespace and its veth live on. `stop` kills it by PID and
 *   (optionally) sends a Release from the same namespace; `reap` stops the
 *   clients whose container is gone (at start and periodically).
 */

/** The script shipped with the package (libexec/dhclient-script), from src/attach or dist/attach alike. */
export const SHIPPED_DHCLIENT_SCRIPT = fileURLToPath(new URL('../../libexec/dhclient-script', import.meta.url));

export interface DhcpTarget {
  /** Container name: names the state directory. */
  name: string;
  /** Host PID of the container's init. */
  pid: number;
  mac: string;
  ifname: string;
}

export interface DhcpClientsOptions {
  /** One directory per container beneath it, e.g. /run/unionize/dhcp. */
  stateDir: string;
  dhclient?: string;
  nsenter?: string;
  /** dhclient-script(8) to run; default the shipped one. */
  script?: string;
  /** Send a DHCPv6 Release when stopping for good (the bridge's dnsmasq then reports `del`). Default true. */
  release?: boolean;
  /** For tests. */
  run?: CommandRunner;
  procRoot?: string;
  /** Kill a process by PID (tests). */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
}

/** What the state directory remembers about whom the client serves. */
interface ClientRecord {
  name: string;
  mac: string;
  ifname: string;
  /** The container init's PID and start time (proc(5) stat field 22): a reused PID is not the container. */
  pid: number;
  startTime: string;
}

export type ClientState = 'running' | 'stale' | 'none';

const PID_FILE_WAIT_MS = 2_000;
const EXIT_WAIT_MS = 1_000;
const RELEASE_TIMEOUT_MS = 3_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * dhclient.conf(5) for one container. Rapid Commit (RFC 8415 section 18.2.1,
 * option 14): a Solicit answered by a Reply, without the Advertise round and
 * the client's wait of about a second for more Advertise messages; dnsmasq
 * honours it (the container bridge has one server, so no lease is committed
 * for nothing). The FQDN only for names that are plain hostnames (RFC 1123).
 */
function clientConf(name: string): string {
  const lines = ['# Written by unionize for one container; see dhclient.conf(5).', 'send dhcp6.rapid-commit;'];
  if (/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) lines.push(`send fqdn.fqdn "${name}";`);
  return `${lines.join('\n')}\n`;
}

export class DhcpClients {
  readonly #stateDir: string;
  readonly #dhclient: string;
  readonly #nsenter: string;
  readonly #script: string;
  readonly #release: boolean;
  readonly #run: CommandRunner;
  readonly #proc: string;
  readonly #kill: (pid: number, signal: NodeJS.Signals) => void;
  readonly #locks = new KeyedMutex();

  constructor(options: DhcpClientsOptions) {
    this.#stateDir = options.stateDir;
    this.#dhclient = options.dhclient ?? 'dhclient';
    this.#nsenter = options.nsenter ?? 'nsenter';
    this.#script = options.script ?? SHIPPED_DHCLIENT_SCRIPT;
    this.#release = options.release ?? true;
    this.#run = options.run ?? ((command) => runCommand(command, command.args.includes('-r') ? RELEASE_TIMEOUT_MS : 10_000));
    this.#proc = options.procRoot ?? '/proc';
    this.#kill = options.kill ?? ((pid, signal) => process.kill(pid, signal));
  }

  get stateDir(): string {
    return this.#stateDir;
  }

  #dir(name: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`bad container name for a state directory: ${JSON.stringify(name)}`);
    return join(this.#stateDir, name);
  }

  #files(name: string) {
    const dir = this.#dir(name);
    return {
      dir,
      conf: join(dir, 'dhclient.conf'),
      leases: join(dir, 'dhclient6.leases'),
      pid: join(dir, 'dhclient.pid'),
      log: join(dir, 'dhclient.log'),
      record: join(dir, 'target.json'),
    };
  }

  /** dhclient's arguments, the same for starting and releasing so `-r` finds the lease. */
  #dhclientArgs(name: string, ifname: string, mode: readonly string[]): string[] {
    const f = this.#files(name);
    return ['-6', ...mode, '-D', 'LL', '-cf', f.conf, '-lf', f.leases, '-pf', f.pid, '-sf', this.#script, ifname];
  }

  /** proc(5) stat: state and start time, or null when the process is gone or a zombie. */
  async #stat(pid: number): Promise<{ comm: string; startTime: string } | null> {
    try {
      const text = await readFile(`${this.#proc}/${pid}/stat`, 'utf8');
      const open = text.indexOf('(');
      const close = text.lastIndexOf(')');
      const fields = text.slice(close + 2).split(' ');
      // PID 1 of some sandboxes never reaps: a zombie counts as gone.
      if (fields[0] === 'Z' || fields[0] === 'X') return null;
      return { comm: text.slice(open + 1, close), startTime: fields[19] ?? '' };
    } catch {
      return null;
    }
  }

  async #netns(pid: number): Promise<string | null> {
    try {
      return await readlink(`${this.#proc}/${pid}/ns/net`);
    } catch {
      return null;
    }
  }

  /** The PID in the pid file if it is a live dhclient, else null. */
  async #clientPid(name: string): Promise<number | null> {
    let pid: number;
    try {
      pid = Number((await readFile(this.#files(name).pid, 'utf8')).trim());
    } catch {
      return null;
    }
    if (!Number.isInteger(pid) || pid <= 0) return null;
    const stat = await this.#stat(pid);
    return stat?.comm === 'dhclient' ? pid : null;
  }

  async #readRecord(name: string): Promise<ClientRecord | null> {
    try {
      return JSON.parse(await readFile(this.#files(name).record, 'utf8')) as ClientRecord;
    } catch {
      return null;
    }
  }

  /** `running`: a live dhclient in this container's namespace; `stale`: one elsewhere (an earlier container of the name). */
  async state(target: Pick<DhcpTarget, 'name' | 'pid'>): Promise<ClientState> {
    const pid = await this.#clientPid(target.name);
    if (pid === null) return 'none';
    const [mine, container] = await Promise.all([this.#netns(pid), this.#netns(target.pid)]);
    return mine !== null && mine === container ? 'running' : 'stale';
  }

  /** Start the client unless it already runs for this container; returns its PID. Replaces a stale one without a Release. */
  start(target: DhcpTarget): Promise<{ pid: number; started: boolean }> {
    return this.#locks.run(target.name, async () => {
      const f = this.#files(target.name);
      const state = await this.state(target);
      const running = state === 'running' ? await this.#clientPid(target.name) : null;
      if (running !== null) return { pid: running, started: false };
      if (state === 'stale') await this.#stopLocked(target.name, false, { keepDir: true });
      const startTime = (await this.#stat(target.pid))?.startTime;
      if (startTime === undefined) throw new Error(`container process ${target.pid} is gone`);

      await mkdir(f.dir, { recursive: true, mode: 0o700 });
      const record: ClientRecord = { name: target.name, mac: target.mac, ifname: target.ifname, pid: target.pid, startTime };
      await Promise.all([
        writeFile(f.conf, clientConf(target.name), { mode: 0o600 }),
        writeFile(f.record, `${JSON.stringify(record)}\n`, { mode: 0o600 }),
        rm(f.pid, { force: true }),
      ]);
      const command: Command = {
        file: this.#nsenter,
        args: ['-t', String(target.pid), '-n', this.#dhclient, ...this.#dhclientArgs(target.name, target.ifname, ['-nw'])],
        logFile: f.log,
      };
      await this.#run(command);
      // The daemon writes its pid file after the parent has exited.
      const deadline = Date.now() + PID_FILE_WAIT_MS;
      for (;;) {
        const pid = await this.#clientPid(target.name);
        if (pid !== null) return { pid, started: true };
        if (Date.now() >= deadline) throw new Error(`dhclient wrote no pid file in ${PID_FILE_WAIT_MS} ms (see ${f.log})`);
        await sleep(20);
      }
    });
  }

  /** Stop the client for good (Release if configured) and drop its state. No-op when there is none. */
  stop(name: string, options: { release?: boolean } = {}): Promise<void> {
    return this.#locks.run(name, () => this.#stopLocked(name, options.release ?? this.#release, { keepDir: false }));
  }

  async #stopLocked(name: string, release: boolean, { keepDir }: { keepDir: boolean }): Promise<void> {
    const f = this.#files(name);
    const pid = await this.#clientPid(name);
    const record = await this.#readRecord(name);
    let netnsFd: number | undefined;
    try {
      if (pid !== null) {
        // Hold its namespace: if the container is gone, dhclient is all that keeps eth1 alive for the Release.
        if (release && record) netnsFd = openSync(`${this.#proc}/${pid}/ns/net`, 'r');
        // SIGKILL, not SIGTERM: dhclient rewrites its lease file on the way out, and `-r` then finds nothing to release.
        this.#kill(pid, 'SIGKILL');
        await this.#waitGone(pid);
      }
      await rm(f.pid, { force: true });
      if (netnsFd !== undefined && record) {
        await this.#run({
          file: this.#nsenter,
          args: ['--net=/proc/self/fd/3', this.#dhclient, ...this.#dhclientArgs(name, record.ifname, ['-r'])],
          extraFds: [netnsFd],
          logFile: f.log,
        });
      }
    } finally {
      if (netnsFd !== undefined) closeSync(netnsFd);
      if (!keepDir) await rm(f.dir, { recursive: true, force: true });
    }
  }

  async #waitGone(pid: number): Promise<void> {
    const deadline = Date.now() + EXIT_WAIT_MS;
    while ((await this.#stat(pid)) !== null && Date.now() < deadline) await sleep(10);
  }

  /**
   * Stop the clients whose container is gone: its init (PID and start time as
   * recorded) no longer runs, or no longer in the client's namespace. Returns
   * the names reaped. Never throws for one bad directory.
   */
  async reap(onError?: (name: string, error: unknown) => void): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.#stateDir);
    } catch {
      return [];
    }
    const reaped: string[] = [];
    for (const name of names) {
      try {
        if (await this.#locks.run(name, () => this.#reapOne(name))) reaped.push(name);
      } catch (error) {
        onError?.(name, error);
      }
    }
    return reaped;
  }

  async #reapOne(name: string): Promise<boolean> {
    const record = await this.#readRecord(name);
    const pid = await this.#clientPid(name);
    if (record) {
      const init = await this.#stat(record.pid);
      const alive = init !== null && init.startTime === record.startTime;
      const clientNs = pid === null ? null : await this.#netns(pid);
      const sameNs = pid === null || clientNs === (await this.#netns(record.pid));
      if (alive && sameNs) return false;
    }
    await this.#stopLocked(name, this.#release, { keepDir: false });
    return true;
  }
}
