import { mkdirSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { inNs } from './netns.js';
import type { LogFn } from './teardown.js';

/**
 * The lab's dnsmasq instances, rendered from the repository's templates:
 * dnsmasq/device-bridge.conf.example on the device bridge, and (dhcp
 * addressing) dnsmasq/container-bridge.conf.example on the container bridge.
 */

export interface DeviceBridgeConfig {
  interface: string;
  rangeStart: string;
  rangeEnd: string;
  prefixLength: number;
  leaseSeconds: number;
  hook: string;
  leaseFile: string;
  pidFile: string;
}

export function renderDeviceBridgeConfig(template: string, config: DeviceBridgeConfig): string {
  return renderBridgeConfig(template, config, 'device-bridge');
}

/** Both templates take the same placeholders. */
export function renderBridgeConfig(template: string, config: DeviceBridgeConfig, label: 'device-bridge' | 'container-bridge'): string {
  if (config.leaseSeconds < 120) throw new Error(`leaseSeconds must be at least 120 (dnsmasq's floor), got ${config.leaseSeconds}`);
  const values: Record<string, string> = {
    INTERFACE: config.interface,
    RANGE_START: config.rangeStart,
    RANGE_END: config.rangeEnd,
    PREFIX_LEN: String(config.prefixLength),
    LEASE_TIME: String(config.leaseSeconds),
    HOOK: config.hook,
    LEASE_FILE: config.leaseFile,
    PID_FILE: config.pidFile,
  };
  // Comment lines are left alone (they describe the placeholders).
  return template
    .split('\n')
    .map((line) =>
      line.trimStart().startsWith('#')
        ? line
        : line.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
            const value = values[key];
            if (value === undefined) throw new Error(`${label} template: unknown placeholder ${whole}`);
            if (/\s/.test(value)) throw new Error(`${label} template: ${key} must not contain white space`);
            return value;
          }),
    )
    .join('\n');
}

export interface DnsmasqSetup {
  argv: string[];
  leaseFile: string;
  confFile: string;
}

/**
 * Render the config under `<dir>/<subdir>/` (default `dnsmasq`, the device
 * bridge's) and return the command that runs dnsmasq in `netns`.
 * `extraLines` are appended (options the templates leave to the site).
 */
export function prepareDnsmasq(options: {
  repo: string;
  dir: string;
  netns: string;
  config: Omit<DeviceBridgeConfig, 'leaseFile' | 'pidFile'>;
  template?: 'device-bridge' | 'container-bridge';
  subdir?: string;
  extraLines?: readonly string[];
}): DnsmasqSetup {
  const kind = options.template ?? 'device-bridge';
  const template = readFileSync(join(options.repo, 'dnsmasq', `${kind}.conf.example`), 'utf8');
  const sub = join(options.dir, options.subdir ?? 'dnsmasq');
  mkdirSync(sub, { recursive: true, mode: 0o700 });
  const leaseFile = join(sub, 'leases');
  const confFile = join(sub, `${kind}.conf`);
  const extra = options.extraLines?.length ? `\n# Added by the lab\n${options.extraLines.join('\n')}\n` : '';
  writeFileSync(confFile, renderBridgeConfig(template, { ...options.config, leaseFile, pidFile: join(sub, 'dnsmasq.pid') }, kind) + extra);
  const argv = inNs(options.netns, ['dnsmasq', '--keep-in-foreground', '--log-facility=-', `--conf-file=${confFile}`]);
  return { argv, leaseFile, confFile };
}

/** dnsmasq logs "DHCP, sockets bound exclusively to interface X" once it is listening. */
export const DNSMASQ_READY_LINE = 'sockets bound exclusively';

export interface DnsmasqLease {
  expires: number;
  iaid: string;
  address: string;
  hostname: string | null;
  duid: string;
}

/** DHCPv6 entries of dnsmasq's lease file (`expiry iaid address hostname duid`, after the `duid` line). */
export function readDnsmasqLeases(leaseFile: string): DnsmasqLease[] {
  let text: string;
  try {
    text = readFileSync(leaseFile, 'utf8');
  } catch {
    return [];
  }
  const leases: DnsmasqLease[] = [];
  let v6 = false;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'duid') {
      v6 = true;
      continue;
    }
    if (!v6 || f.length < 5) continue;
    leases.push({ expires: Number(f[0]), iaid: f[1]!, address: f[2]!, hostname: f[3] === '*' ? null : f[3]!, duid: f[4]! });
  }
  return leases;
}

/** The file the lab's orchestrator rewrites to have the device dnsmasq re-read its hostsdir ([pinning] reload_file). */
export const PIN_RELOAD_FILE = 'dnsmasq.reload';

/**
 * What config/dnsmasq-devnet-reload.path does on a host: when the
 * orchestrator rewrites `requestFile`, the device dnsmasq gets SIGHUP (the
 * lab's orchestrator runs as another user and may not signal it itself).
 */
export function reloadOnRequest(requestFile: string, dnsmasqPid: () => number | undefined, log: LogFn): { close(): void } {
  // One write makes several inotify events; systemd triggers once, on the close after it.
  let timer: NodeJS.Timeout | undefined;
  const signal = () => {
    timer = undefined;
    const pid = dnsmasqPid();
    if (pid === undefined) return;
    log(`dnsmasq: SIGHUP to ${pid} (${basename(requestFile)} rewritten)`);
    try {
      process.kill(pid, 'SIGHUP');
    } catch (error) {
      log(`dnsmasq: SIGHUP to ${pid} failed: ${(error as Error).message}`);
    }
  };
  const watcher = watch(dirname(requestFile), (_event, name) => {
    if (name === basename(requestFile)) timer ??= setTimeout(signal, 50);
  });
  return {
    close: () => {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
