import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNs } from './netns.js';
import { run, spawnManaged, waitFor, type ManagedProcess } from './process.js';
import type { LabState } from './state.js';
import type { LogFn } from './teardown.js';

/**
 * A device: a namespace with eth0 on the device bridge, and ISC dhclient -6
 * as its DHCPv6 client. dhclient runs in the foreground (-d) as our child so
 * its PID is ours to stop; `dhclient -r` with the same pid file stops it and
 * sends a Release, which makes dnsmasq call the hook with `del`.
 */

export interface LabDevice {
  /** 1-based. */
  index: number;
  /** The device's network namespace. */
  netns: string;
  /** eth0's MAC: random, locally administered; dhclient derives the DUID-LLT from it. */
  mac: string;
  /** The hostname the device sends (DHCPv6 FQDN option); null sends none. */
  hostname: string | null;
  /** dhclient's config, lease and pid files live here. */
  dir: string;
}

export interface DeviceLease {
  /** As dnsmasq reports it: lower-case hex, colon separated. */
  duid: string;
  /** dnsmasq's form of the IAID: decimal (dhclient uses the MAC's last four octets). */
  iaid: string;
  address: string;
  hostname: string | null;
}

/**
 * `hostname` defaults to `lab-dev-<index>`; any other string (hostile ones
 * included: it is written as a dhclient.conf string, escaped) or null (send
 * no FQDN option) is for tests of what a device may send.
 */
export function makeDevice(index: number, netns: string, mac: string, labDir: string, hostname: string | null = `lab-dev-${index}`): LabDevice {
  const dir = join(labDir, 'devices', `d${index}`);
  mkdirSync(dir, { recursive: true });
  // dhclient.conf(5): send the FQDN option so dnsmasq learns (and passes on) the hostname.
  writeFileSync(join(dir, 'dhclient.conf'), hostname === null ? '' : `send fqdn.fqdn ${dhclientString(hostname)};\n`);
  return { index, netns, mac, hostname, dir };
}

/** A dhclient.conf string literal: quotes and backslashes escaped, other non-printable bytes as \ooo octal. */
export function dhclientString(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  let out = '';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${b.toString(8).padStart(3, '0')}`;
  }
  return `"${out}"`;
}

/** Decode dhclient's `default-duid "..."` string (printable bytes as is, others as \ooo). */
export function decodeDhclientString(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      bytes.push(c.charCodeAt(0));
      continue;
    }
    const octal = /^[0-7]{3}/.exec(text.slice(i + 1));
    if (octal) {
      bytes.push(parseInt(octal[0], 8));
      i += 3;
    } else {
      bytes.push(text.charCodeAt(i + 1));
      i += 1;
    }
  }
  return Buffer.from(bytes);
}

export function duidFromLeaseFile(text: string): string | undefined {
  const match = /^default-duid "((?:[^"\\]|\\.)*)";/m.exec(text);
  if (!match) return undefined;
  return Array.from(decodeDhclientString(match[1]!), (b) => b.toString(16).padStart(2, '0')).join(':');
}

interface IpAddrJson {
  addr_info?: { family: string; local: string; prefixlen: number; scope: string; tentative?: boolean; dadfailed?: boolean }[];
}

export class DeviceClient {
  private dhclient: ManagedProcess | undefined;

  constructor(
    readonly device: LabDevice,
    private readonly script: string,
    private readonly state: LabState,
    private readonly log: LogFn,
  ) {}

  private dhclientArgs(mode: string[]): string[] {
    const d = this.device.dir;
    return inNs(this.device.netns, [
      'dhclient', '-6', ...mode, '-v',
      '-cf', join(d, 'dhclient.conf'), '-lf', join(d, 'lease'), '-pf', join(d, 'dhclient.pid'),
      '-sf', this.script, 'eth0',
    ]);
  }

  get leased(): boolean {
    return this.dhclient?.running ?? false;
  }

  /** The global, non-tentative addresses of eth0. */
  async addresses(): Promise<string[]> {
    const result = await run(inNs(this.device.netns, ['ip', '-j', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']));
    if (result.code !== 0) return [];
    const links = JSON.parse(result.stdout || '[]') as IpAddrJson[];
    return links.flatMap((l) => l.addr_info ?? []).filter((a) => !a.tentative && !a.dadfailed).map((a) => a.local);
  }

  async hasDefaultRoute(): Promise<boolean> {
    const result = await run(inNs(this.device.netns, ['ip', '-j', '-6', 'route', 'show', 'default']));
    return result.code === 0 && (JSON.parse(result.stdout || '[]') as unknown[]).length > 0;
  }

  /**
   * Take a lease: the address is up (not tentative) and the RA's default
   * route is there. `temporary`: ask for a temporary address (IA_TA) beside
   * the IA_NA (`dhclient -N -T`), as devices with privacy extensions may.
   */
  async lease(timeoutMs = 30_000, temporary = false): Promise<DeviceLease> {
    if (!this.dhclient?.running) {
      const proc = spawnManaged(`dhclient ${this.device.netns}`, this.dhclientArgs(['-1', '-d', ...(temporary ? ['-N', '-T'] : [])]), {
        logFile: join(this.device.dir, 'dhclient.log'),
      });
      this.dhclient = proc;
      this.state.addProcess(proc.name, proc.pid);
    }
    const proc = this.dhclient;
    const started = Date.now();
    const lease = await waitFor(
      `a DHCPv6 lease on ${this.device.netns}`,
      async () => {
        const [address] = await this.addresses();
        if (!address || !(await this.hasDefaultRoute())) return undefined;
        const duid = duidFromLeaseFile(readFileSync(join(this.device.dir, 'lease'), 'utf8'));
        return duid ? { duid, address } : undefined;
      },
      { timeoutMs, intervalMs: 50, abort: () => (proc.running ? undefined : `dhclient exited: ${proc.tail(5)}`) },
    );
    const iaid = String(parseInt(this.device.mac.split(':').slice(2).join(''), 16));
    this.log(`${this.device.netns}: leased ${lease.address} (DUID ${lease.duid}) in ${Date.now() - started} ms`);
    return { ...lease, iaid, hostname: this.device.hostname };
  }

  /** Release the lease (dnsmasq then calls its script with `del`) and stop dhclient. */
  async release(): Promise<void> {
    const started = Date.now();
    const result = await run(this.dhclientArgs(['-r']), { timeoutMs: 15_000 });
    appendFileSync(join(this.device.dir, 'dhclient-release.log'), `${new Date().toISOString()} dhclient -r exited ${result.code} in ${Date.now() - started} ms\n${result.stderr}${result.stdout}`);
    if (result.code !== 0) this.log(`${this.device.netns}: dhclient -r exited ${result.code}: ${result.stderr.trim().split('\n').pop()}`);
    await this.stop();
  }

  /**
   * The device forgets its lease but not its identity, as a device that
   * reboots without keeping DHCP state does: dhclient stops without a
   * Release, its lease file keeps only the DUID (default-duid), and eth0's
   * global addresses go. Its next `lease()` solicits afresh (no Confirm of a
   * saved lease, which dnsmasq answers without touching the lease), so
   * dnsmasq renews its lease if it still holds one (the hook gets `old`), or
   * hands out an address as to a new client (`add`).
   */
  async forget(): Promise<void> {
    await this.stop();
    const file = join(this.device.dir, 'lease');
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      /* no lease yet */
    }
    const duid = text.split('\n').find((line) => line.startsWith('default-duid '));
    writeFileSync(file, duid ? `${duid}\n` : '');
    await run(inNs(this.device.netns, ['ip', '-6', 'addr', 'flush', 'dev', 'eth0', 'scope', 'global']));
  }

  /** Stop dhclient without a Release (the lease stays until it expires). */
  async stop(): Promise<void> {
    const proc = this.dhclient;
    if (!proc) return;
    await proc.stop({ graceMs: 3000 });
    this.state.removeProcess(proc.pid);
    this.dhclient = undefined;
  }
}
