import { HOOK_PEER, OPERATOR_PEER, agentPeer, peerKeyFile, type AddressingMode } from '@unionize/protocol';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type Docker from 'dockerode';
import { makeCa, makePeerKeyFiles, makeSecretFile, makeServerCert } from './certs.js';
import { killDhcpClients, startContainerBridgeDnsmasq } from './container-bridge.js';
import {
  Daemon, curlStatus, hookIni, httpsGet, orchestratorIni, startHookFlusher, unionizeIni, writeHookWrapper, type OrchestratorIniOptions,
} from './daemons.js';
import { DeviceClient, makeDevice, type DeviceLease, type LabDevice } from './devices.js';
import { DNSMASQ_READY_LINE, PIN_RELOAD_FILE, prepareDnsmasq, reloadOnRequest } from './dnsmasq.js';
import { startDocker } from './dockerd.js';
import {
  addDevice, addressesOf, buildCore, buildSecondDockerHost, deviceUp, inNs, namesOf, randomMac, randomPrefix, setSegmentLink,
  type LabAddresses, type LabNames,
} from './netns.js';
import { run, type CommandResult } from './process.js';
import { startLabVm, type LabVmOptions, type QemuVm } from './qemu.js';
import { repoRoot } from './repo.js';
import { unitCommand } from './unit-command.js';
import { removeTreeSync } from './mounts.js';
import { LabState, cleanupStateSync, sweepStaleLabs } from './state.js';
import { trackLabLogs } from './live-labs.js';
import { Teardown, registerCleanup, type LogFn } from './teardown.js';
import { ORCHESTRATOR_USER, asUser, lookupUser, privateCopies } from './unprivileged.js';
import { startPostgres, type PostgresServer } from '@unionize/protocol/testing/postgres-server';

export type { DeviceLease, LabDevice } from './devices.js';
export type { LabAddresses, LabNames } from './netns.js';
export type { CommandResult } from './process.js';
export { labPrerequisites, labSkipReason } from './prereqs.js';
export type { LabVmOptions, QemuVm, VmLease, VmPage } from './qemu.js';
export { qemuSkipReason } from './qemu.js';

export interface LabOptions {
  /** How many device namespaces to make (0..128; the bench's burst uses 100). */
  devices: number;
  /** Lab directory; default <tmpdir>/unionize-lab-<name>. Removed on stop unless `keep` or KEEP_LAB=1. */
  dir?: string;
  /**
   * Where the daemons', the hook's and the lab's own logs go; default <dir>/logs,
   * removed with the lab dir. The demo keeps them (.lab/logs/<name>) past teardown.
   */
  logDir?: string;
  /** Run this executable as dnsmasq's --dhcp-script instead of the real hook (lab self-test). */
  hookCommand?: string;
  log?: (line: string) => void;
  /** DHCPv6 lease time; at least 120 (dnsmasq's floor). Default 600. */
  leaseSeconds?: number;
  /** Start orchestrator and unionize (and so dockerd). Default true. */
  daemons?: boolean;
  /** Start (or use) dockerd even without the daemons. Default: as `daemons`. */
  docker?: boolean;
  /** Give the orchestrator a SQLite store at <dir>/orchestrator/orchestrator.db instead of memory. */
  sql?: boolean;
  /** The spool flusher's `--interval` (it always runs, in the orchestrator namespace; default 10). */
  hookFlushSeconds?: number;
  /** The hostname each device sends (by index from 0; default lab-dev-N; null sends none). */
  hostnames?: readonly (string | null)[];
  keep?: boolean;
  /**
   * Docker hosts, 1 (default) or 2. The second is a namespace <lab>-dock2 with
   * a private dockerd of its own (the client image built there too) and its
   * own unionize, agent `dock2` at https://[P:5::2]:9443; its brctr is one L2
   * segment with dock1's (P:3::/64, gateway P:3::1 on dock1).
   */
  dockerHosts?: 1 | 2;
  /** `capacity` and `drain` of [agents.dock1] / [agents.dock2]. */
  agents?: Readonly<Record<string, AgentSettings>>;
  /** [placement] health_interval_seconds and dead_after_seconds; the daemon's defaults otherwise. */
  placement?: { healthIntervalSeconds?: number; deadAfterSeconds?: number };
  /** [reconcile] interval_seconds; default 5. */
  reconcileSeconds?: number;
  /**
   * [addressing] mode; default static. dhcp: a second dnsmasq serves DHCPv6
   * (P:3::1000–P:3::1fff) and router advertisements on dock1's brctr, started
   * before unionize, with the hook in role instance (server ctrnet) as its
   * script; each unionize gets a [dhcp] state_dir in the lab directory.
   */
  addressing?: AddressingMode;
  /**
   * dhcp addressing: unionize's [dhcp] lease_wait_ms, how long its answer to a
   * create waits for the container's lease (default 8000). 0: it answers at
   * once without an address, and the client is made ready by the instance
   * lease the container bridge's hook reports.
   */
  dhcpLeaseWaitMs?: number;
  /**
   * Device address pinning: [pinning] hostsdir = <dir>/orchestrator/pins
   * (owned by the orchestrator's user), read by the device dnsmasq through
   * dhcp-hostsdir. That dnsmasq then also allocates sequentially
   * (dhcp-sequential-ip): an unpinned device that forgot its lease gets the
   * next free address, not the one its DUID hashes to, so a pin is told from luck.
   */
  pinning?: boolean;
  /** Share links: [share] dir = <dir>/orchestrator/shares (the orchestrator's own). */
  shares?: boolean;
  /**
   * unionize's [network] attach backend; default native. pipework: the
   * repository's unchanged upstream script (third_party/pipework/pipework)
   * as [network] pipework.
   */
  attach?: 'native' | 'pipework';
  /** unionize's [isolation] mode; default: none written (the daemon's default, filter). */
  isolation?: 'filter' | 'open';
  /** unionize's [isolation] egress, from the lab's prefix (random, chosen at start); default: none written (none). */
  isolationEgress?: (prefix: string) => string;
  /** Appended to orchestrator.ini as it is, e.g. [profiles.NAME] sections. */
  orchestratorExtraIni?: string;
  /** [instances] pool: a warm pool of the default profile on each agent (0, default: none). */
  pool?: number;
  /**
   * Source address validation: the flusher keeps its nftables table (bridge
   * unionize_sav) in the orchestrator namespace, on the device ports dev*.
   */
  sourceValidation?: boolean;
  /**
   * 2: an orchestrator pair on a PostgreSQL server of the lab's own (a
   * throwaway cluster, on a Unix socket in the lab directory): `orchestrator`
   * on port 8443 (started first, and ready once it leads) and `orchestrator2`
   * on 8444 (ready as its standby), both in the orchestrator namespace, both
   * started again 2 s after they exit by themselves (as their unit would);
   * the hook is given both URLs. Default 1 (no PostgreSQL).
   */
  orchestrators?: 1 | 2;
  /** The pair's [pair] retry_ms; default 500. */
  pairRetryMs?: number;
}

/** The lab's PostgreSQL server (orchestrators: 2): stop and start it for outage tests. */
export interface LabPostgres {
  /** The pair's database, as [store] url names it. */
  readonly url: string;
  readonly running: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** [agents.NAME] settings the lab writes. */
export interface AgentSettings {
  capacity?: number;
  drain?: boolean;
}

/** One docker host of the lab: its namespace, engine and agent. */
export interface LabDockerHost {
  /** The agent's name in the orchestrator's config: dock1, dock2. */
  readonly agent: string;
  readonly netns: string;
  /** Reachable from the orchestrator namespace only. */
  readonly unionizeUrl: string;
  readonly dockerSocket: string;
  readonly docker: Docker;
}

export interface Lab {
  /** The lab's ULA /48 without `::`, e.g. `fd3c:12ab:9f00`: P:1:: devices, P:2:: transit, P:3:: containers, P:4:: management. */
  readonly prefix: string;
  readonly names: LabNames;
  readonly addresses: LabAddresses;
  readonly dir: string;
  /** https://[P:4::1]:8443, reachable from this (root namespace) process. */
  readonly orchestratorUrl: string;
  /** Every orchestrator's: the one above, and https://[P:4::1]:8444 with orchestrators: 2. */
  readonly orchestratorUrls: readonly string[];
  /** With orchestrators: 2, the PostgreSQL server they share. */
  readonly postgres: LabPostgres | undefined;
  /** https://[P:2::2]:9443, reachable from the orchestrator namespace only. */
  readonly unionizeUrl: string;
  readonly caFile: string;
  /**
   * Every peer's key file (protocol's keys.ts): hook.keys, operator.keys,
   * agent-dock1.keys (and agent-dock2.keys). The orchestrator reads private
   * copies (in <dir>/orchestrator/keys); the hook and unionize these.
   */
  readonly keysDir: string;
  /** The operator token for the orchestrator's /dashboard (`[dashboard] token_file`). */
  readonly dashboardTokenFile: string;
  /** The bearer token for both daemons' /metrics (`[metrics] token_file`). */
  readonly metricsTokenFile: string;
  readonly dockerSocket: string;
  /** dockerode on the lab's engine; throws when the lab runs without docker. */
  readonly docker: Docker;
  readonly devices: readonly LabDevice[];
  readonly dnsmasqLeaseFile: string;
  readonly hookWrapper: string;
  readonly logDir: string;
  /** Milliseconds per start-up phase. */
  readonly timings: Readonly<Record<string, number>>;
  /** Stop/start/restart (optionally with SIGKILL) for restart tests. unionize2 runs dock2's agent; ctrDnsmasq the container bridge's dnsmasq (dhcp addressing). */
  readonly daemons: {
    readonly orchestrator?: Daemon; readonly orchestrator2?: Daemon; readonly unionize?: Daemon; readonly unionize2?: Daemon; readonly dnsmasq: Daemon;
    readonly ctrDnsmasq?: Daemon; readonly hookFlush?: Daemon;
  };
  /** Every docker host, dock1 first (the lab's `docker` and `dockerSocket` are dock1's). */
  readonly dockerHosts: readonly LabDockerHost[];
  /** dockerode on the second docker host's engine; throws in a lab with one. */
  readonly docker2: Docker;
  /** dhcp addressing: the container bridge dnsmasq's lease file. */
  readonly ctrDnsmasqLeaseFile: string | undefined;
  /** Device address pinning: the orchestrator's [pinning] hostsdir, the device dnsmasq's dhcp-hostsdir. */
  readonly pinDir: string | undefined;
  readonly orchestratorIniFile: string;
  /** Rewrite [agents.NAME] capacity/drain in orchestrator.ini; the orchestrator reads it when it (re)starts. */
  configureAgents(agents: Readonly<Record<string, AgentSettings>>): void;
  /** Rewrite [instances] pool in orchestrator.ini (the default profile's warm pool); read when the orchestrator (re)starts. */
  configurePool(size: number, options?: { syncSeconds?: number }): void;
  /** Cut the second docker host's containers off the container segment (a host lost to the network), or join them again. */
  connectDockerHost(host: 2, connected: boolean): Promise<void>;
  /** The device forgets its lease but keeps its DUID (see DeviceClient.forget); lease() then solicits afresh. */
  forgetLease(device: LabDevice | number): Promise<void>;
  lease(device: LabDevice | number, options?: { timeoutMs?: number; temporary?: boolean }): Promise<DeviceLease>;
  release(device: LabDevice | number): Promise<void>;
  /** Stop the device's DHCP client without a Release (the lease runs until it expires). */
  stopClient(device: LabDevice | number): Promise<void>;
  /** One ICMPv6 echo from the device to `address`; `from`: with that source address (one of the device's). */
  ping(device: LabDevice | number, address: string, options?: { from?: string }): Promise<boolean>;
  httpGet(device: LabDevice | number, url: string, options?: { caFile?: string }): Promise<{ status: number; body: string; error?: string }>;
  run(ns: string | LabDevice, argv: readonly string[]): Promise<CommandResult>;
  /** QEMU test clients started with startVm, in order. */
  readonly vms: readonly QemuVm[];
  /** Boot a QEMU VM on the device bridge (test/lab/qemu.ts); it is killed when the lab stops. */
  startVm(options?: LabVmOptions): Promise<QemuVm>;
  /** Restart the lab's private dockerd (restart tests). */
  restartDocker(options?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

class LabImpl implements Lab {
  readonly orchestratorUrl: string;
  orchestratorUrls: string[];
  postgres: LabPostgres | undefined;
  readonly unionizeUrl: string;
  readonly caFile: string;
  readonly keysDir: string;
  readonly dashboardTokenFile: string;
  readonly metricsTokenFile: string;
  readonly hookWrapper: string;
  readonly devices: LabDevice[] = [];
  readonly clients: DeviceClient[] = [];
  readonly timings: Record<string, number> = {};
  readonly daemons: {
    orchestrator?: Daemon; orchestrator2?: Daemon; unionize?: Daemon; unionize2?: Daemon; dnsmasq: Daemon; ctrDnsmasq?: Daemon; hookFlush?: Daemon;
  } = {} as never;
  readonly dockerHosts: LabDockerHost[] = [];
  dockerSocket = '';
  dnsmasqLeaseFile = '';
  ctrDnsmasqLeaseFile: string | undefined;
  pinDir: string | undefined;
  readonly orchestratorIniFile: string;
  orchestratorIniOptions: OrchestratorIniOptions | undefined;
  dockerClient: Docker | undefined;
  dockerRestart: ((options?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }) => Promise<void>) | undefined;
  unregister: () => void = () => {};
  private stopping: Promise<void> | undefined;

  constructor(
    readonly prefix: string,
    readonly names: LabNames,
    readonly addresses: LabAddresses,
    readonly dir: string,
    readonly logDir: string,
    readonly state: LabState,
    readonly teardown: Teardown,
    readonly log: LogFn,
  ) {
    this.orchestratorUrl = `https://[${addresses.mgmtOrch}]:8443`;
    this.orchestratorUrls = [this.orchestratorUrl];
    this.unionizeUrl = `https://[${addresses.dockTransit}]:9443`;
    this.caFile = join(dir, 'tls', 'ca.crt');
    this.keysDir = join(dir, 'keys');
    this.dashboardTokenFile = join(dir, 'dashboard-token');
    this.metricsTokenFile = join(dir, 'metrics-token');
    this.hookWrapper = join(dir, 'orchestrator-hook');
    this.orchestratorIniFile = join(dir, 'orchestrator.ini');
  }

  get docker2(): Docker {
    const host = this.dockerHosts[1];
    if (!host) throw new Error('this lab has one docker host (startLab({ dockerHosts: 2 }) for two)');
    return host.docker;
  }

  configurePool(size: number, options: { syncSeconds?: number } = {}): void {
    const current = this.orchestratorIniOptions;
    if (!current) throw new Error('this lab runs without the daemons');
    const placement = options.syncSeconds === undefined ? current.placement : { ...current.placement, healthIntervalSeconds: options.syncSeconds };
    const updated = { ...current, pool: size, ...(placement ? { placement } : {}) };
    writeFileSync(this.orchestratorIniFile, orchestratorIni(updated));
    this.orchestratorIniOptions = updated;
    this.log(`orchestrator.ini: [instances] pool = ${size}`);
  }

  configureAgents(agents: Readonly<Record<string, AgentSettings>>): void {
    const current = this.orchestratorIniOptions;
    if (!current) throw new Error('this lab runs without the daemons');
    for (const name of Object.keys(agents)) {
      if (!current.agents.some((a) => a.name === name)) throw new Error(`no agent ${name} in this lab`);
    }
    const updated = { ...current, agents: current.agents.map((a) => ({ name: a.name, url: a.url, ...(agents[a.name] ?? {}) })) };
    writeFileSync(this.orchestratorIniFile, orchestratorIni(updated));
    this.orchestratorIniOptions = updated;
    this.log(`orchestrator.ini: agents ${JSON.stringify(agents)}`);
  }

  async connectDockerHost(host: 2, connected: boolean): Promise<void> {
    if (!this.dockerHosts[host - 1]) throw new Error(`this lab has no docker host ${host}`);
    await setSegmentLink(this.names.dock2, connected);
    this.log(`docker host ${host}: ${connected ? 'joined to' : 'cut off'} the container segment`);
  }

  forgetLease(device: LabDevice | number): Promise<void> {
    return this.client(device).forget();
  }

  restartDocker(options?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }): Promise<void> {
    if (!this.dockerRestart) throw new Error('this lab runs without docker (startLab({ docker: false }))');
    return this.dockerRestart(options);
  }

  get docker(): Docker {
    if (!this.dockerClient) throw new Error('this lab runs without docker (startLab({ docker: false }))');
    return this.dockerClient;
  }

  private client(device: LabDevice | number): DeviceClient {
    const index = typeof device === 'number' ? device : device.index;
    const client = this.clients[index - 1];
    if (!client) throw new Error(`no device ${index} in this lab (devices are 1..${this.clients.length})`);
    return client;
  }

  lease(device: LabDevice | number, options: { timeoutMs?: number; temporary?: boolean } = {}): Promise<DeviceLease> {
    return this.client(device).lease(options.timeoutMs, options.temporary);
  }

  release(device: LabDevice | number): Promise<void> {
    return this.client(device).release();
  }

  stopClient(device: LabDevice | number): Promise<void> {
    return this.client(device).stop();
  }

  async ping(device: LabDevice | number, address: string, options: { from?: string } = {}): Promise<boolean> {
    const ns = this.client(device).device.netns;
    const from = options.from ? ['-I', options.from] : [];
    return (await run(inNs(ns, ['ping', '-6', '-n', '-c', '1', '-W', '2', ...from, address]))).code === 0;
  }

  async httpGet(device: LabDevice | number, url: string, options: { caFile?: string } = {}): Promise<{ status: number; body: string; error?: string }> {
    const ns = this.client(device).device.netns;
    const tls = options.caFile ? ['--cacert', options.caFile] : [];
    const result = await run(
      inNs(ns, ['curl', '-sS', '-g', '--noproxy', '*', '--max-time', '5', ...tls, '-w', '\n%{http_code}', url]),
      { timeoutMs: 10_000 },
    );
    const cut = result.stdout.lastIndexOf('\n');
    const status = Number(result.stdout.slice(cut + 1)) || 0;
    const body = cut >= 0 ? result.stdout.slice(0, cut) : '';
    if (result.code !== 0) return { status: 0, body, error: result.stderr.trim() || `curl exit ${result.code}` };
    return { status, body };
  }

  run(ns: string | LabDevice, argv: readonly string[]): Promise<CommandResult> {
    return run(inNs(typeof ns === 'string' ? ns : ns.netns, argv));
  }

  readonly vms: QemuVm[] = [];
  private vmsStarted = 0;

  async startVm(options: LabVmOptions = {}): Promise<QemuVm> {
    const index = ++this.vmsStarted;
    const ctx = { netns: this.names.orch, bridge: this.names.deviceBridge, logDir: this.logDir, state: this.state, teardown: this.teardown, log: this.log };
    const vm = await startLabVm(ctx, index, options);
    this.vms.push(vm);
    return vm;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const started = Date.now();
      const errors = await this.teardown.run(this.log);
      this.unregister();
      this.log(`lab ${this.names.lab}: stopped in ${Date.now() - started} ms${errors.length ? ` with ${errors.length} error(s)` : ''}`);
      if (errors.length > 0) throw new AggregateError(errors, `lab teardown: ${errors.map((e) => e.message).join('; ')}`);
    })();
    return this.stopping;
  }
}

function makeLogger(logDir: string, user?: (line: string) => void): LogFn {
  const verbose = process.env.LAB_VERBOSE === '1';
  return (line: string) => {
    try {
      appendFileSync(join(logDir, 'lab.log'), `${new Date().toISOString()} ${line}\n`);
    } catch {
      /* the log dir is gone (after stop) */
    }
    if (user) user(line);
    else if (verbose) process.stderr.write(`lab: ${line}\n`);
  };
}

/** Build the whole lab; on any failure, tear down what was made and rethrow. */
export async function startLab(options: LabOptions): Promise<Lab> {
  const deviceCount = options.devices;
  if (!Number.isInteger(deviceCount) || deviceCount < 0 || deviceCount > 128) throw new Error(`devices must be an integer 0..128, got ${deviceCount}`);
  const leaseSeconds = options.leaseSeconds ?? 600;
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 120) throw new Error(`leaseSeconds must be an integer >= 120 (dnsmasq's floor), got ${leaseSeconds}`);
  const withDaemons = options.daemons ?? true;
  const withDocker = options.docker ?? withDaemons;
  const hostCount = options.dockerHosts ?? 1;
  if (hostCount !== 1 && hostCount !== 2) throw new Error(`dockerHosts must be 1 or 2, got ${String(hostCount)}`);
  if (hostCount === 2 && !withDocker) throw new Error('dockerHosts: 2 needs docker');
  const dhcpAddressing = options.addressing === 'dhcp';
  const keep = options.keep ?? process.env.KEEP_LAB === '1';
  const repo = repoRoot();

  const name = `ul${randomBytes(2).toString('hex')}`;
  const prefix = randomPrefix();
  const dir = options.dir ?? join(tmpdir(), `unionize-lab-${name}`);
  const logDir = options.logDir ? join(options.logDir, name) : join(dir, 'logs');
  for (const sub of ['tls', 'devices', 'dnsmasq']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  // Others may pass through (the unprivileged orchestrator reaches its own directory), not list or read.
  chmodSync(dir, 0o711);
  const log = makeLogger(logDir, options.log);
  sweepStaleLabs(log);
  const untrackLogs = trackLabLogs(logDir, join(dir, 'devices'));

  const state = new LabState(name, dir, keep);
  const teardown = new Teardown();
  teardown.add('lab dir', () => {
    untrackLogs();
    // The record goes only once the dir is gone: what could not be removed is swept by the next lab.
    if (keep) log(`lab ${name}: kept ${dir}`);
    else removeTreeSync(dir);
    state.discard();
  });
  const lab = new LabImpl(prefix, namesOf(name, deviceCount), addressesOf(prefix), dir, logDir, state, teardown, log);
  lab.unregister = registerCleanup({ cleanup: () => lab.stop(), emergency: () => cleanupStateSync(state.data, log) });
  log(`lab ${name}: prefix ${prefix}::/48, dir ${dir}, ${deviceCount} device(s)`);

  const t0 = Date.now();
  let mark = t0;
  const phase = (label: string) => {
    const now = Date.now();
    lab.timings[label] = now - mark;
    mark = now;
  };
  try {
    const { names, addresses: addr } = lab;
    const ca = await makeCa(join(dir, 'tls'));
    const orchCert = await makeServerCert(ca, 'orchestrator', [
      'IP:::1', `IP:${addr.orchBridge}`, `IP:${addr.orchTransit}`, `IP:${addr.mgmtOrch}`, 'DNS:orchestrator',
    ]);
    const unionizeCert = await makeServerCert(ca, 'unionize', [`IP:${addr.dockTransit}`, 'DNS:unionize']);
    const unionize2Cert = hostCount === 2 ? await makeServerCert(ca, 'unionize2', [`IP:${addr.dock2Transit}`, 'DNS:unionize2']) : undefined;
    makePeerKeyFiles(lab.keysDir, [HOOK_PEER, OPERATOR_PEER, ...['dock1', 'dock2'].slice(0, hostCount).map(agentPeer)]);
    makeSecretFile(lab.dashboardTokenFile);
    makeSecretFile(lab.metricsTokenFile);
    phase('certs');

    if (withDocker) {
      const docker = await startDocker({ dir, logDir, name, repo, log, teardown, state });
      lab.dockerSocket = docker.socket;
      lab.dockerClient = docker.docker;
      lab.dockerRestart = docker.restart;
      lab.dockerHosts.push({ agent: 'dock1', netns: names.dock, unionizeUrl: lab.unionizeUrl, dockerSocket: docker.socket, docker: docker.docker });
      phase('docker');
    }
    if (hostCount === 2) {
      const docker2 = await startDocker({ dir, logDir, name, repo, log, teardown, state, host: 2 });
      lab.dockerHosts.push({
        agent: 'dock2', netns: names.dock2, unionizeUrl: `https://[${addr.dock2Transit}]:9443`, dockerSocket: docker2.socket, docker: docker2.docker,
      });
      phase('docker2');
    }

    const topo = { names, addr, log, teardown, state };
    await buildCore(topo);
    if (hostCount === 2) await buildSecondDockerHost(topo);
    for (let i = 0; i < deviceCount; i++) {
      const mac = randomMac();
      await addDevice(topo, i, mac);
      const device = makeDevice(i + 1, names.devices[i]!, mac, dir, options.hostnames?.[i]);
      lab.devices.push(device);
      const client = new DeviceClient(device, join(repo, 'test', 'lab', 'dhclient-script'), state, log);
      lab.clients.push(client);
      teardown.add(`dhclient ${device.netns}`, () => client.stop());
    }
    phase('network');

    const paths = { dir, caFile: lab.caFile };
    const hookKeyFile = peerKeyFile(lab.keysDir, HOOK_PEER);
    if (withDaemons) {
      // dhcp addressing: the container bridge's dnsmasq, before the agents, with the hook in role instance.
      const dhcpStateDirs = new Map<string, string>();
      if (dhcpAddressing) {
        for (const host of lab.dockerHosts) dhcpStateDirs.set(host.agent, join(dir, `dhcp-${host.agent}`));
        // After the agents stop (steps run last added first): the DHCP clients they leave in containers' namespaces.
        teardown.add('dhcp clients', () => {
          for (const stateDir of dhcpStateDirs.values()) killDhcpClients(stateDir, log);
        });
        const ctr = await startContainerBridgeDnsmasq({
          repo, dir, logDir, netns: names.dock, bridge: names.containerBridge, prefix, leaseSeconds,
          orchestratorUrl: `https://[${addr.orchTransit}]:8443`, caFile: lab.caFile, hookKeyFile, state, log, teardown,
        });
        lab.daemons.ctrDnsmasq = ctr.daemon;
        lab.ctrDnsmasqLeaseFile = ctr.leaseFile;
        phase('ctr-dnsmasq');
      }

      /** One docker host's agent: its INI, then the daemon, ready when its /healthz answers from the orchestrator host. */
      const startUnionize = async (agent: 'dock1' | 'dock2', ns: string, cert: { cert: string; key: string }, dockerSocket: string, url: string) => {
        const daemonName = agent === 'dock1' ? 'unionize' : 'unionize2';
        const ini = join(dir, `${daemonName}.ini`);
        writeFileSync(
          ini,
          unionizeIni({
            ...paths, ...cert, keyFile: peerKeyFile(lab.keysDir, agentPeer(agent)), dockerSocket, gateway: addr.dockBridge, metricsTokenFile: lab.metricsTokenFile,
            ...(dhcpStateDirs.has(agent) ? { dhcpStateDir: dhcpStateDirs.get(agent)!, dhcpLeaseWaitMs: options.dhcpLeaseWaitMs ?? 8000 } : {}),
            ...(options.attach === 'pipework' ? { pipework: join(repo, 'third_party', 'pipework', 'pipework') } : {}),
            ...(options.isolation ? { isolation: options.isolation } : {}),
            ...(options.isolationEgress ? { isolationEgress: options.isolationEgress(prefix) } : {}),
          }),
        );
        const daemon = new Daemon(
          daemonName,
          inNs(ns, [...unitCommand('unionize.service'), '--config', ini]),
          join(logDir, `${daemonName}.log`),
          async () => (await curlStatus(names.orch, `${url}/healthz`, lab.caFile)) === 200,
          state,
          log,
        );
        lab.daemons[daemonName] = daemon;
        teardown.add(daemonName, () => daemon.stop());
        await daemon.start();
        phase(daemonName);
      };
      await startUnionize('dock1', names.dock, unionizeCert, lab.dockerSocket, lab.unionizeUrl);
      const second = lab.dockerHosts[1];
      if (second && unionize2Cert) await startUnionize('dock2', names.dock2, unionize2Cert, second.dockerSocket, second.unionizeUrl);

      // Unprivileged, with its own copies of what it must read (test/lab/unprivileged.ts).
      const orchUser = await lookupUser(ORCHESTRATOR_USER);
      const orchDir = join(dir, 'orchestrator');
      const own = privateCopies(orchDir, orchUser, {
        caFile: lab.caFile, cert: orchCert.cert, key: orchCert.key,
        dashboardToken: lab.dashboardTokenFile, metricsToken: lab.metricsTokenFile,
      });
      const ownKeysDir = join(orchDir, 'keys');
      privateCopies(ownKeysDir, orchUser, Object.fromEntries(readdirSync(lab.keysDir).map((name) => [name, join(lab.keysDir, name)])));
      if (options.pinning) {
        // The orchestrator (unprivileged) writes the pins; dnsmasq (root) reads them.
        lab.pinDir = join(orchDir, 'pins');
        mkdirSync(lab.pinDir, { mode: 0o755 });
        chownSync(lab.pinDir, orchUser.uid, orchUser.gid);
      }
      const shareDir = options.shares ? join(orchDir, 'shares') : undefined;
      const pair = options.orchestrators === 2;
      let store: OrchestratorIniOptions['store'];
      if (pair) {
        // Stopped after the orchestrators (teardown runs last added first), so they are not told the database went away.
        const server = await startPostgres({ dir: join(dir, 'postgres') });
        let pid = server.pid!;
        state.addProcess('postgres', pid);
        const track = () => {
          state.removeProcess(pid);
          if (server.pid !== undefined) state.addProcess('postgres', (pid = server.pid));
        };
        lab.postgres = {
          url: server.url('unionize'),
          get running() {
            return server.pid !== undefined;
          },
          stop: async () => {
            await server.stop();
            track();
            log('postgres: stopped');
          },
          start: async () => {
            await server.start();
            track();
            log(`postgres: started again (pid ${pid})`);
          },
        };
        teardown.add('postgres', async () => {
          await server.stop();
          state.removeProcess(pid);
        });
        await server.createDatabase('unionize');
        const password = privateCopies(join(orchDir, 'postgres'), orchUser, { file: server.passwordFile }).file!;
        store = { url: server.url('unionize'), passwordFile: password };
        lab.orchestratorUrls = [lab.orchestratorUrl, `https://[${addr.mgmtOrch}]:8444`];
        phase('postgres');
      }
      lab.orchestratorIniOptions = {
        ...paths, caFile: own.caFile!, keysDir: ownKeysDir, cert: own.cert!, key: own.key!,
        dashboardTokenFile: own.dashboardToken!, metricsTokenFile: own.metricsToken!,
        containerSubnet: addr.containerSubnet,
        agents: lab.dockerHosts.map((h) => ({ name: h.agent, url: h.unionizeUrl, ...(options.agents?.[h.agent] ?? {}) })),
        ...(options.sql ? { sqlPath: join(orchDir, 'orchestrator.db') } : {}),
        ...(options.reconcileSeconds !== undefined ? { reconcileSeconds: options.reconcileSeconds } : {}),
        ...(options.placement ? { placement: options.placement } : {}),
        ...(dhcpAddressing ? { addressing: 'dhcp' satisfies AddressingMode } : {}),
        ...(lab.pinDir ? { pinning: { dir: lab.pinDir, reloadFile: join(orchDir, PIN_RELOAD_FILE) } } : {}),
        ...(shareDir ? { shareDir } : {}),
        ...(options.orchestratorExtraIni ? { extraIni: options.orchestratorExtraIni } : {}),
        ...(options.pool ? { pool: options.pool } : {}),
        ...(store ? { store } : {}),
      };
      const pairOf = (n: 1 | 2) => ({ name: `orch${n}`, url: lab.orchestratorUrls[n - 1]!, urls: lab.orchestratorUrls, retryMs: options.pairRetryMs ?? 500 });
      writeFileSync(lab.orchestratorIniFile, orchestratorIni({ ...lab.orchestratorIniOptions, ...(pair ? { pair: pairOf(1) } : {}) }));
      // The pair's first is ready once it leads (so which one leads at the start is known); a restart, once it serves.
      let mustLead = pair;
      const orchestrator = new Daemon(
        'orchestrator',
        inNs(names.orch, asUser(orchUser, [...unitCommand('orchestrator.service'), '--config', lab.orchestratorIniFile])),
        join(logDir, 'orchestrator.log'),
        async (since) => (await httpsGet(`${lab.orchestratorUrl}/healthz`, lab.caFile)).status === 200 && (!mustLead || since().includes('"msg":"leading: serving the API (HTTPS)"')),
        state,
        log,
      );
      lab.daemons.orchestrator = orchestrator;
      teardown.add('orchestrator', () => orchestrator.stop());
      await orchestrator.start(pair ? 120_000 : 30_000);
      mustLead = false;
      phase('orchestrator');
      if (pair) {
        const ini2 = join(dir, 'orchestrator2.ini');
        writeFileSync(ini2, orchestratorIni({ ...lab.orchestratorIniOptions, port: 8444, pair: pairOf(2) }));
        const orchestrator2 = new Daemon(
          'orchestrator2',
          inNs(names.orch, asUser(orchUser, [...unitCommand('orchestrator.service'), '--config', ini2])),
          join(logDir, 'orchestrator2.log'),
          async () => (await httpsGet(`${lab.orchestratorUrls[1]}/healthz`, lab.caFile)).status === 200,
          state,
          log,
        );
        lab.daemons.orchestrator2 = orchestrator2;
        teardown.add('orchestrator2', () => orchestrator2.stop());
        await orchestrator2.start();
        // As their unit (Restart=on-failure, RestartSec=2): a leader that lost its lock exits, and comes back as a standby.
        orchestrator.restartOnFailure(2000);
        orchestrator2.restartOnFailure(2000);
        phase('orchestrator2');
      }
    }

    // One spool dir, handed to the hook's wrapper and written in the flusher's hook.ini.
    const spoolDir = join(dir, 'spool');
    const hookUrls = lab.orchestratorUrls.map((url) => url.replace(`[${lab.addresses.mgmtOrch}]`, '[::1]')).join(', ');
    writeFileSync(join(dir, 'hook.ini'), hookIni({ ...paths, keyFile: hookKeyFile, orchestratorUrl: hookUrls, spoolDir, ...(options.sourceValidation ? { savPorts: 'dev*', savStateFile: join(dir, 'sav-leased.json') } : {}) }));
    writeHookWrapper(lab.hookWrapper, { spoolDir, repo, ...(options.hookCommand ? { command: [options.hookCommand] } : {}) });
    // The spool flusher delivers what the hook spools, as config/orchestrator-hook-flush.service on a real host.
    lab.daemons.hookFlush = await startHookFlusher({
      name: 'hook-flush', netns: names.orch, repo, configFile: join(dir, 'hook.ini'), intervalSeconds: options.hookFlushSeconds ?? 10,
      logDir, state, log, teardown,
    });
    const setup = prepareDnsmasq({
      repo,
      dir,
      netns: names.orch,
      config: {
        interface: names.deviceBridge,
        rangeStart: addr.deviceRange.start,
        rangeEnd: addr.deviceRange.end,
        prefixLength: 64,
        leaseSeconds,
        hook: lab.hookWrapper,
      },
      ...(lab.pinDir ? { extraLines: [`dhcp-hostsdir=${lab.pinDir}`, 'dhcp-sequential-ip'] } : {}),
    });
    lab.dnsmasqLeaseFile = setup.leaseFile;
    const dnsmasq = new Daemon('dnsmasq', setup.argv, join(logDir, 'dnsmasq.log'), async (since) => since().includes(DNSMASQ_READY_LINE), state, log);
    lab.daemons.dnsmasq = dnsmasq;
    teardown.add('dnsmasq', () => dnsmasq.stop());
    await dnsmasq.start(10_000);
    if (lab.pinDir) {
      const watch = reloadOnRequest(join(dir, 'orchestrator', PIN_RELOAD_FILE), () => dnsmasq.pid, log);
      teardown.add('dnsmasq reload watch', () => watch.close());
    }
    // Devices come up after dnsmasq, so their router solicitations are answered at once.
    for (const device of lab.devices) await deviceUp(device.netns);
    phase('dnsmasq');
    lab.timings.total = Date.now() - t0;
    log(`lab ${name}: up in ${lab.timings.total} ms (${JSON.stringify(lab.timings)})`);
    return lab;
  } catch (error) {
    log(`lab ${name}: start failed: ${(error as Error).message}`);
    await lab.stop().catch((stopError: unknown) => log(`lab ${name}: teardown after failed start: ${(stopError as Error).message}`));
    throw error;
  }
}

