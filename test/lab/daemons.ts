import type { AddressingMode } from '@unionize/protocol';
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:https';
import { run, spawnManaged, waitFor, type ManagedProcess } from './process.js';
import type { LabState } from './state.js';
import type { LogFn, Teardown } from './teardown.js';
import { inNs } from './netns.js';

/**
 * A long-running lab process (orchestrator, unionize, dnsmasq) that can be
 * stopped (gently or with SIGKILL) and started again with the same command
 * and log file, so tests can exercise restarts.
 */
export class Daemon {
  private current: ManagedProcess | undefined;
  private startedAt = 0;
  /** restartOnFailure's delay; undefined: not restarted. */
  private restartDelayMs: number | undefined;
  private stopping = false;
  /** How many times restartOnFailure started it again. */
  restarts = 0;

  constructor(
    readonly name: string,
    private readonly argv: readonly string[],
    readonly logFile: string,
    /** Resolves true once the daemon serves; `logSince` is the log text written since this start. */
    private readonly ready: (logSince: () => string) => Promise<boolean>,
    private readonly state: LabState,
    private readonly log: LogFn,
    private readonly env?: NodeJS.ProcessEnv,
  ) {}

  get pid(): number | undefined {
    return this.current?.running ? this.current.pid : undefined;
  }

  get running(): boolean {
    return this.current?.running ?? false;
  }

  /**
   * From now on, started again `delayMs` after it exits by itself, whatever
   * the cause (a crash, kill -9, an exit status), as systemd's
   * Restart=on-failure with RestartSec does; not after stop().
   */
  restartOnFailure(delayMs: number): void {
    this.restartDelayMs = delayMs;
  }

  async start(timeoutMs = 30_000): Promise<void> {
    if (this.current?.running) throw new Error(`${this.name} is already running (pid ${this.current.pid})`);
    this.stopping = false;
    const offset = fileSize(this.logFile);
    const started = Date.now();
    const proc = spawnManaged(this.name, this.argv, { logFile: this.logFile, ...(this.env ? { env: this.env } : {}) });
    this.current = proc;
    this.state.addProcess(this.name, proc.pid);
    void proc.exited.then(async (exit) => {
      if (this.stopping || this.restartDelayMs === undefined || this.current !== proc) return;
      this.state.removeProcess(proc.pid);
      this.log(`${this.name}: pid ${proc.pid} exited by itself (${exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}`}); starting it again in ${this.restartDelayMs} ms, as its unit would`);
      await sleep(this.restartDelayMs);
      if (this.stopping || this.current !== proc) return;
      this.restarts++;
      await this.start().catch((error: unknown) => this.log(`${this.name}: restart failed: ${(error as Error).message}`));
    });
    const logSince = () => readFrom(this.logFile, offset);
    await waitFor(`${this.name} to be ready`, async () => ((await this.ready(logSince)) ? true : undefined), {
      timeoutMs,
      intervalMs: 150,
      abort: () => (proc.running ? undefined : `${this.name} exited (${describeExit(proc)}):\n${logSince().trimEnd().split('\n').slice(-10).join('\n')}`),
    });
    // Our daemons refuse a request signed in the second they started in (SIGNED_BEFORE_START), and a test may
    // send a request it signed itself as soon as this returns. The daemon started before it was seen ready, so
    // from the next second on, a request signed now is taken.
    const seenReady = Date.now();
    await sleep(Math.floor(seenReady / 1000) * 1000 + 1000 - seenReady);
    this.startedAt = Date.now();
    this.log(`${this.name}: pid ${proc.pid} ready in ${this.startedAt - started} ms`);
  }

  /** kill -9 by its PID, as a crash: restartOnFailure, when set, starts it again; resolves once it is gone. */
  async crash(): Promise<void> {
    const proc = this.current;
    if (!proc?.running) throw new Error(`${this.name} is not running`);
    proc.signal('SIGKILL');
    await proc.exited;
    this.log(`${this.name}: pid ${proc.pid} killed (SIGKILL)`);
  }

  /** Stop it: SIGTERM with a grace period, or SIGKILL at once (a crash). */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    this.stopping = true;
    const proc = this.current;
    if (!proc) return;
    await proc.stop({ signal, graceMs: 10_000 });
    this.state.removeProcess(proc.pid);
    this.log(`${this.name}: pid ${proc.pid} stopped (${describeExit(proc)})`);
  }

  async restart(options: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
    await this.stop(options.signal);
    await this.start();
  }
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

function describeExit(proc: ManagedProcess): string {
  const exit = proc.exit;
  if (!exit) return 'running';
  return exit.signal ? `signal ${exit.signal}` : `exit ${exit.code}`;
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(file).size;
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** GET over HTTPS trusting only `caFile`; never throws (status 0 and `error` on failure). */
export function httpsGet(url: string, caFile: string, timeoutMs = 3000): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', ca: readFileSync(caFile), timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (error) => resolve({ status: 0, body, error: error.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', (error) => resolve({ status: 0, body: '', error: error.message }));
    req.end();
  });
}

/** `curl` inside a namespace; the status code, or 0 when the request failed. */
export async function curlStatus(ns: string, url: string, caFile: string): Promise<number> {
  const result = await run([
    'ip', 'netns', 'exec', ns, 'curl', '-sS', '-g', '--noproxy', '*', '--max-time', '3', '--cacert', caFile,
    '-o', '/dev/null', '-w', '%{http_code}', url,
  ]);
  return result.code === 0 ? Number(result.stdout.trim()) : 0;
}

export interface IniPaths {
  dir: string;
  caFile: string;
}

/** One `[agents.NAME]` section. */
export interface AgentIni {
  name: string;
  url: string;
  /** Most containers on it; absent: no limit (the default). */
  capacity?: number;
  drain?: boolean;
}

export interface OrchestratorIniOptions extends IniPaths {
  /** `[auth] keys_dir`: hook.keys, operator.keys, agent-NAME.keys. */
  keysDir: string;
  cert: string;
  key: string;
  containerSubnet: string;
  agents: readonly AgentIni[];
  sqlPath?: string;
  reconcileSeconds?: number;
  dashboardTokenFile?: string;
  metricsTokenFile?: string;
  /** `[placement]`; absent keys keep the daemon's defaults. */
  placement?: { healthIntervalSeconds?: number; deadAfterSeconds?: number };
  /** `[addressing] mode`; dhcp has no prefix (no pool). Default static. */
  addressing?: AddressingMode;
  /** `[pinning] hostsdir`, and the reload_file the lab watches as the dnsmasq-devnet-reload.path unit would. */
  pinning?: { dir: string; reloadFile: string };
  /** `[share] dir`. */
  shareDir?: string;
  /** Appended as it is (e.g. `[profiles.NAME]` sections). */
  extraIni?: string;
  /** `[server] port`; default 8443. */
  port?: number;
  /** `[store]`: PostgreSQL (instead of [sql]), its password in a file. */
  store?: { url: string; passwordFile: string };
  /** `[pair]`: this orchestrator's name and URL, every one's, the CA of their certificates, how often a standby tries. */
  pair?: { name: string; url: string; urls: readonly string[]; retryMs: number };
  /** [instances] pool: the default profile's warm pool on each agent. */
  pool?: number;
}

function agentIni(agent: AgentIni, caFile: string): string {
  return `[agents.${agent.name}]
url = ${agent.url}
ca = ${caFile}
timeout_ms = 15000
${agent.capacity !== undefined ? `capacity = ${agent.capacity}\n` : ''}${agent.drain ? 'drain = true\n' : ''}`;
}

export function orchestratorIni(p: OrchestratorIniOptions): string {
  const addressing = p.addressing === 'dhcp' ? 'mode = dhcp' : `mode = static\nprefix = ${p.containerSubnet}`;
  const placement = [
    p.placement?.healthIntervalSeconds !== undefined ? `health_interval_seconds = ${p.placement.healthIntervalSeconds}` : '',
    p.placement?.deadAfterSeconds !== undefined ? `dead_after_seconds = ${p.placement.deadAfterSeconds}` : '',
  ].filter(Boolean);
  const store = p.store
    ? `[store]\nurl = ${p.store.url}\npassword_file = ${p.store.passwordFile}\n${p.pair ? `\n[pair]\nname = ${p.pair.name}\nurl = ${p.pair.url}\nurls = ${p.pair.urls.join(', ')}\nca = ${p.caFile}\nretry_ms = ${p.pair.retryMs}\n` : ''}`
    : `[sql]\n${p.sqlPath ? `enabled = true\npath = ${p.sqlPath}` : 'enabled = false'}\n`;
  return `[server]
listen = ::
port = ${p.port ?? 8443}
cert = ${p.cert}
key = ${p.key}

[auth]
keys_dir = ${p.keysDir}

${store}
[addressing]
${addressing}

[instances]
image = unionize-client:latest${p.pool ? `\npool = ${p.pool}` : ''}

[reconcile]
; The lab converges fast: its tests kill and restart parts.
interval_seconds = ${p.reconcileSeconds ?? 5}
expiry_grace_seconds = 2

${p.agents.map((a) => agentIni(a, p.caFile)).join('\n')}${placement.length ? `\n[placement]\n${placement.join('\n')}\n` : ''}${p.pinning ? `\n[pinning]\nhostsdir = ${p.pinning.dir}\nreload_file = ${p.pinning.reloadFile}\nreload_interval_seconds = 1\n` : ''}${p.shareDir ? `\n[share]\ndir = ${p.shareDir}\n` : ''}${p.dashboardTokenFile ? `\n[dashboard]\ntoken_file = ${p.dashboardTokenFile}\n` : ''}${p.metricsTokenFile ? `\n[metrics]\ntoken_file = ${p.metricsTokenFile}\n` : ''}
[log]
level = info
${p.extraIni ? `\n${p.extraIni.trim()}\n` : ''}`;
}

export function unionizeIni(
  p: IniPaths & {
    keyFile: string; cert: string; key: string; dockerSocket: string; gateway: string; metricsTokenFile?: string; dhcpStateDir?: string; dhcpLeaseWaitMs?: number;
    isolation?: 'filter' | 'open';
    isolationEgress?: string;
    /** attach = pipework with this script; native otherwise. */
    pipework?: string;
  },
): string {
  return `[server]
listen = ::
port = 9443
cert = ${p.cert}
key = ${p.key}

[auth]
key_file = ${p.keyFile}

[docker]
socket = ${p.dockerSocket}

[network]
bridge = brctr
gateway = ${p.gateway}
${p.pipework ? `attach = pipework\npipework = ${p.pipework}` : 'attach = native'}
${p.dhcpStateDir ? `\n[dhcp]\nstate_dir = ${p.dhcpStateDir}\nlease_wait_ms = ${p.dhcpLeaseWaitMs ?? 8000}\n` : ''}${isolationSection(p)}
[log]
level = info
${p.metricsTokenFile ? `\n[metrics]\ntoken_file = ${p.metricsTokenFile}\n` : ''}`;
}

/** unionize's [isolation], only with what the lab was told (the daemon's defaults otherwise). */
function isolationSection(p: { isolation?: string; isolationEgress?: string }): string {
  const lines = [...(p.isolation ? [`mode = ${p.isolation}`] : []), ...(p.isolationEgress ? [`egress = ${p.isolationEgress}`] : [])];
  return lines.length === 0 ? '' : `\n[isolation]\n${lines.join('\n')}\n`;
}

/** The hook's INI: the device bridge's (devnet, role device) unless told otherwise. */
export function hookIni(p: IniPaths & { keyFile: string; orchestratorUrl: string; server?: string; role?: 'device' | 'instance'; spoolDir: string; savPorts?: string; savStateFile?: string }): string {
  return `[orchestrator]
url = ${p.orchestratorUrl}
ca = ${p.caFile}
key_file = ${p.keyFile}
timeout_ms = 3000

[dhcp]
server = ${p.server ?? 'devnet'}
role = ${p.role ?? 'device'}

[spool]
dir = ${p.spoolDir}
${p.savPorts ? `\n[sav]\nenabled = true\nports = ${p.savPorts}\nstate_file = ${p.savStateFile}\n` : ''}`;
}

/** Single-quote a word for sh. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The executable dnsmasq runs as --dhcp-script: dnsmasq/orchestrator-hook.sh
 * (the spool writer, as installed on a real host) handed this lab's spool, as
 * dnsmasq/orchestrator-hook-instance.sh hands it its own; or, given
 * `command`, a stand-in.
 */
export function writeHookWrapper(file: string, opts: { spoolDir: string; repo: string; command?: readonly string[] }): void {
  const exec = opts.command
    ? opts.command.map(shQuote).join(' ')
    : `/bin/sh ${shQuote(join(opts.repo, 'dnsmasq', 'orchestrator-hook.sh'))}`;
  const text = `#!/bin/sh
# Generated by test/lab: dnsmasq's --dhcp-script for this lab.
ORCHESTRATOR_HOOK_SPOOL=${shQuote(opts.spoolDir)}
export ORCHESTRATOR_HOOK_SPOOL
exec ${exec} "$@"
`;
  writeFileSync(file, text, { mode: 0o755 });
}

export function hookBundle(repo: string): string {
  return join(repo, 'packages', 'hook', 'dist', 'orchestrator-hook.mjs');
}

/**
 * The spool flusher (`orchestrator-hook --flush --interval S`) for one hook
 * config, in `netns`, as config/orchestrator-hook-flush.service runs it: it
 * delivers what dnsmasq/orchestrator-hook.sh spools. Started before the
 * dnsmasq whose calls it delivers.
 */
export async function startHookFlusher(p: {
  name: string; netns: string; repo: string; configFile: string; intervalSeconds: number; logDir: string;
  state: LabState; log: LogFn; teardown: Teardown;
}): Promise<Daemon> {
  const daemon = new Daemon(
    p.name,
    inNs(p.netns, [process.execPath, hookBundle(p.repo), '--flush', '--interval', String(p.intervalSeconds)]),
    join(p.logDir, `${p.name}.log`),
    async (since) => since().includes('"msg":"flusher started"'),
    p.state,
    p.log,
    { ...process.env, ORCHESTRATOR_HOOK_CONFIG: p.configFile },
  );
  p.teardown.add(p.name, () => daemon.stop());
  await daemon.start(10_000);
  return daemon;
}
