import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labEnv, run, spawnManaged, waitFor, type CommandResult, type ManagedProcess } from './process.js';

/**
 * A Debian root booted by its own systemd with systemd-nspawn, inside a
 * network namespace the test made (ARCHITECTURE.md, "Real systemd on this
 * machine"). `--register=no --keep-unit`: there is no machined here. Commands
 * run inside with nsenter into every namespace of the machine's PID 1.
 */
export interface Machine {
  name: string;
  root: string;
  /** The machine's systemd, PID 1 inside. */
  leader: number;
  exec(argv: readonly string[], options?: { timeoutMs?: number; input?: string }): Promise<CommandResult>;
  /** Power off (`systemctl poweroff`), SIGKILL of nspawn when it has not stopped in `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  nspawn: ManagedProcess;
}

export interface BootOptions {
  name: string;
  root: string;
  netns: string;
  logFile: string;
  /** Let Docker's dockerd run containers inside (unified cgroups, all capabilities, keyring and bpf calls). */
  docker?: boolean;
  /**
   * Capabilities beyond nspawn's default set, e.g. CAP_NET_ADMIN for dnsmasq
   * (nspawn grants it only with a network of its own making, not with
   * --network-namespace-path); they reach no further than the machine's own
   * namespaces, the test's.
   */
  capabilities?: string[];
}

const MACHINE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** dockerd inside a machine: no bridge, no iptables, no forwarding of its own (the namespace has it, set from outside). */
export const MACHINE_DOCKER_DAEMON_JSON = { bridge: 'none', iptables: false, ip6tables: false, 'ip-forward': false };

export async function bootMachine(options: BootOptions): Promise<Machine> {
  if (options.docker) {
    writeFileSync(join(options.root, 'etc/docker/daemon.json'), `${JSON.stringify(MACHINE_DOCKER_DAEMON_JSON)}\n`);
  }
  const argv = [
    'systemd-nspawn', '--quiet', `--directory=${options.root}`, '--boot', '--register=no', '--keep-unit',
    `--machine=${options.name}`, `--network-namespace-path=/run/netns/${options.netns}`,
    ...(options.docker ? ['--capability=all', '--system-call-filter=@keyring bpf'] : []),
    ...(options.capabilities?.length ? [`--capability=${options.capabilities.join(',')}`] : []),
  ];
  const env = labEnv(options.docker ? { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' } : {});
  const nspawn = spawnManaged(`machine ${options.name}`, argv, { logFile: options.logFile, env });
  // Until it is returned, nobody else can stop it: a failure here does.
  const fail = async (error: Error): Promise<never> => {
    await nspawn.stop({ signal: 'SIGKILL' });
    throw error;
  };
  const leader = await waitFor(`${options.name}'s systemd to start`, () => systemdChild(nspawn.pid), {
    timeoutMs: 60_000,
    abort: () => (nspawn.running ? undefined : `systemd-nspawn exited: ${nspawn.tail()}`),
  }).catch(fail);
  const exec = (command: readonly string[], opts: { timeoutMs?: number; input?: string } = {}) =>
    run(['nsenter', '-t', String(leader), '-a', '--', 'env', '-i', `PATH=${MACHINE_PATH}`, 'LANG=C.UTF-8', ...command], {
      timeoutMs: opts.timeoutMs ?? 120_000,
      input: opts.input,
    });
  // The machine's network is its own namespace, as a real host's is, but
  // nspawn (--network-namespace-path) treats it as the host's: /sys shows the
  // host's network devices (pipework, for one, looks for the bridge in
  // /sys/class/net) and /proc/sys/net is read-only (the bridge units set
  // forwarding). A sysfs mounted from inside the machine's namespaces shows
  // its own devices, over /sys's net views; /proc/sys/net is made writable,
  // as nspawn does for a network of its own making.
  const own = await exec(['sh', '-euc', [
    'mkdir -p /run/netns-sysfs', 'mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /run/netns-sysfs',
    'mount --bind /run/netns-sysfs/class/net /sys/class/net', 'mount --bind /run/netns-sysfs/devices/virtual/net /sys/devices/virtual/net',
    'mount --bind /proc/sys/net /proc/sys/net', 'mount -o remount,bind,rw /proc/sys/net',
  ].join(' && ')], { timeoutMs: 30_000 });
  if (own.code !== 0) await fail(new Error(`${options.name}: its own namespace's /sys/class/net and /proc/sys/net: ${own.stderr.trim()}`));
  const stop = async (graceMs = 60_000) => {
    if (!nspawn.running) return;
    await exec(['systemctl', 'poweroff', '--no-block'], { timeoutMs: 10_000 });
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs));
    if ((await Promise.race([nspawn.exited, timer])) === 'timeout') await nspawn.stop({ signal: 'SIGKILL' });
  };
  return { name: options.name, root: options.root, leader, exec, stop, nspawn };
}

/** The PID of nspawn's child once it is systemd (the container's PID 1). */
function systemdChild(nspawnPid: number): number | undefined {
  let children: string;
  try {
    children = readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, 'utf8');
  } catch {
    return undefined;
  }
  for (const pid of children.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd') return pid;
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** Wait for the machine's boot to finish: `running`, or `degraded` with the failed units named. */
export async function waitBooted(machine: Machine, timeoutMs = 180_000): Promise<{ state: string; failed: string }> {
  const state = await waitFor(
    `${machine.name} to finish booting`,
    async () => {
      const result = await machine.exec(['systemctl', 'is-system-running'], { timeoutMs: 10_000 });
      const s = result.stdout.trim();
      return s === 'running' || s === 'degraded' ? s : undefined;
    },
    { timeoutMs, intervalMs: 500, abort: () => (machine.nspawn.running ? undefined : `systemd-nspawn exited: ${machine.nspawn.tail()}`) },
  );
  const failed = (await machine.exec(['systemctl', '--failed', '--no-legend', '--plain'])).stdout.trim();
  return { state, failed };
}
