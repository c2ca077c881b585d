import { readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clientIdOf } from '@unionize/protocol';
import { duidFromLeaseFile, type LabDevice } from '../lab/devices.js';
import type { Lab } from '../lab/lab.js';
import { inNs } from '../lab/netns.js';
import { run, sleep, spawnManaged, type ManagedProcess } from '../lab/process.js';
import { repoRoot } from '../lab/repo.js';
import { LAB_SERVER } from './events.js';

/**
 * A lab device's DHCPv6 client, started by the bench itself: the lab's
 * `lease()` polls every device with two `ip` spawns every 50 ms, which for a
 * burst of N devices is load enough to move the figures. Same dhclient, same
 * arguments and script as test/lab/devices.ts; the address is watched through
 * /proc/<dhclient pid>/net/if_inet6 (a file read, no spawn). Processes are
 * stopped by PID; the lab's teardown kills whatever is left in its namespaces.
 */
export class Dhclient {
  #proc: ManagedProcess | undefined;

  constructor(
    readonly lab: Lab,
    readonly device: LabDevice,
  ) {}

  #args(mode: string[]): string[] {
    const d = this.device.dir;
    return inNs(this.device.netns, [
      'dhclient', '-6', ...mode, '-v',
      '-cf', join(d, 'dhclient.conf'), '-lf', join(d, 'lease'), '-pf', join(d, 'dhclient.pid'),
      '-sf', join(repoRoot(), 'test', 'lab', 'dhclient-script'), 'eth0',
    ]);
  }

  /**
   * Make the device as a newcomer (untimed): no global address on eth0 and no
   * lease in dhclient's lease file, only its DUID (kept, so the device keeps
   * its identity). Otherwise dhclient starts from its stored lease (Confirm,
   * or the address configured before the server answered), which is not a
   * device joining. Returns how many stale addresses were removed.
   */
  async forget(): Promise<number> {
    const leaseFile = join(this.device.dir, 'lease');
    const text = await readFile(leaseFile, 'utf8').catch(() => '');
    const duidLine = /^default-duid "(?:[^"\\]|\\.)*";$/m.exec(text)?.[0];
    await writeFile(leaseFile, duidLine ? `${duidLine}\n` : '');
    const shown = await run(inNs(this.device.netns, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']));
    const stale = shown.stdout.split('\n').filter(Boolean).length;
    if (stale > 0) await run(inNs(this.device.netns, ['ip', '-6', 'addr', 'flush', 'dev', 'eth0', 'scope', 'global']));
    return stale;
  }

  /** Spawn dhclient (foreground, one try); returns Date.now() just before the spawn. */
  start(): number {
    if (this.#proc?.running) throw new Error(`${this.device.netns}: dhclient already running`);
    const startedAt = Date.now();
    this.#proc = spawnManaged(`bench dhclient ${this.device.netns}`, this.#args(['-1', '-d']), { logFile: join(this.device.dir, 'dhclient.log') });
    return startedAt;
  }

  /** Poll eth0 (every `intervalMs`) until it holds a global, non-tentative address; Date.now() when seen. */
  async waitForAddress(timeoutMs = 30_000, intervalMs = 5): Promise<{ address: string; at: number }> {
    const proc = this.#proc;
    if (!proc) throw new Error('dhclient not started');
    const deadline = Date.now() + timeoutMs;
    // Until `ip netns exec` has entered the namespace, /proc/<pid>/net is the root namespace's.
    const netns = `net:[${(await stat(`/run/netns/${this.device.netns}`)).ino}]`;
    for (;;) {
      if (!proc.running) throw new Error(`${this.device.netns}: dhclient exited: ${proc.tail(3)}`);
      const inside = (await readlink(`/proc/${proc.pid}/ns/net`).catch(() => '')) === netns;
      const address = inside ? globalAddress(await readFile(`/proc/${proc.pid}/net/if_inet6`, 'utf8').catch(() => '')) : undefined;
      if (address) return { address, at: Date.now() };
      if (Date.now() > deadline) throw new Error(`${this.device.netns}: no DHCPv6 address after ${timeoutMs} ms`);
      await sleep(intervalMs);
    }
  }

  /** The orchestrator's client id for this device: its DUID from dhclient's lease file, its IAID from the MAC (as dhclient makes it). */
  async clientId(timeoutMs = 5_000): Promise<{ clientId: string; duid: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const duid = duidFromLeaseFile(await readFile(join(this.device.dir, 'lease'), 'utf8').catch(() => ''));
      if (duid) {
        const iaid = String(parseInt(this.device.mac.split(':').slice(2).join(''), 16));
        return { clientId: clientIdOf(LAB_SERVER, duid, iaid), duid };
      }
      if (Date.now() > deadline) throw new Error(`${this.device.netns}: no DUID in the lease file`);
      await sleep(10);
    }
  }

  /** Send a Release (dnsmasq then calls the hook with `del`) and stop dhclient. */
  async release(): Promise<void> {
    if (this.#proc?.running) await run(this.#args(['-r']), { timeoutMs: 15_000 });
    await this.stop();
  }

  async stop(): Promise<void> {
    await this.#proc?.stop({ graceMs: 3000 });
    this.#proc = undefined;
  }
}

/** A global-scope (00), non-tentative (flag 0x40) IPv6 address of eth0 in /proc/net/if_inet6 text, in colon form. */
export function globalAddress(ifInet6: string): string | undefined {
  for (const line of ifInet6.split('\n')) {
    const [hex, , , scope, flags, name] = line.trim().split(/\s+/);
    if (name !== 'eth0' || scope !== '00' || !hex || !flags || (parseInt(flags, 16) & 0x40) !== 0) continue;
    return hex.match(/.{4}/g)!.join(':');
  }
  return undefined;
}

/** ping6 from the device until it answers (each try waits at most 200 ms); Date.now() at the answering ping's exit. */
export async function pingUntil(device: LabDevice, address: string, tries = 100): Promise<{ at: number; tries: number }> {
  for (let i = 1; i <= tries; i++) {
    const result = await run(inNs(device.netns, ['ping', '-6', '-n', '-c', '1', '-W', '0.2', address]), { timeoutMs: 5000 });
    if (result.code === 0) return { at: Date.now(), tries: i };
  }
  throw new Error(`${device.netns}: ${address} did not answer ${tries} pings`);
}
