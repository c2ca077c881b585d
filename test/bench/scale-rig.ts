import type { PostgresServer } from '@unionize/protocol/testing/postgres-server';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HOOK_PEER, LABELS, OPERATOR_PEER, agentPeer, containerNameOf, macOf, peerKeyFile, type EventOutcomeKind } from '@unionize/protocol';
import { makePeerKeyFiles, makeServerCert } from '../lab/certs.js';
import { httpsGet } from '../lab/daemons.js';
import type { Lab } from '../lab/lab.js';
import { inNs } from '../lab/netns.js';
import { unitCommand } from '../lab/unit-command.js';
import { run, sleep, spawnManaged, waitFor, type ManagedProcess } from '../lab/process.js';
import { repoRoot } from '../lab/repo.js';
import { ORCHESTRATOR_USER, asUser, lookupUser, privateCopies } from '../lab/unprivileged.js';
import { OrchestratorApi } from '../support/orchestrator-api.js';
import { LAB_SERVER, leaseEvent, syntheticDevice, type Action, type SyntheticDevice } from './events.js';
import { FakeAgent } from './fake-agent.js';
import { rssOf } from './proc.js';
import { siteSql } from './site-config.js';

const PORT = 8444;
const AGENT_PORT = 9444;
/**
 * Preloaded containers' addresses start at this offset of the orchestrator's
 * /64, far above where its own allocations (lowest free offset from 0x100,
 * store/ipv6.ts) will go for the new clients of the apply runs.
 */
const PRELOAD_OFFSET = 0x1_0000;

/**
 * The rig's store: in memory, a SQLite file with the daemon's defaults,
 * `site`: config/orchestrator.ini's [sql] section as it is (its path moved
 * into the rig's directory), the store a site gets from the example, or
 * `postgres`: [store] url on a database of the bench's PostgreSQL server
 * (the orchestrator leads alone: no [pair]).
 */
export type RigStore = 'memory' | 'sqlite' | 'site' | 'postgres';

/** With the postgres store: the bench's PostgreSQL server and the rig's own database on it. */
export interface RigPostgres {
  server: PostgresServer;
  database: string;
}

/**
 * A second, real orchestrator (as its unit and the lab run it: in the
 * orchestrator namespace, as nobody) whose one agent is FakeAgent in this
 * process, so that it can hold 10,000 clients, each with an instance,
 * without 10,000 containers. Quotas are off (their defaults allow 1,000
 * instances and 120 new ones a minute), the reconciler runs at start and then
 * hourly (the lab's runs every 5 s), the log level is the product's default
 * (info).
 *
 * Two ways to give it clients:
 * - `adopt` (memory store only): the fake agent reports labelled containers
 *   and the daemon, at start, adopts them the way an in-memory orchestrator
 *   does after a restart (reconciler → lifecycle.adopt). Linear in clients.
 * - `events`: signed `add`s over HTTPS, applied by its queue, as devices
 *   would arrive: one request and one fake container each (about 1,000
 *   clients/s at 10,000 in memory; it was quadratic while placement and
 *   quotas listed every instance per new client).
 */
export class ScaleRig {
  readonly devices: SyntheticDevice[] = [];
  #proc: ManagedProcess | undefined;
  #api: OrchestratorApi | undefined;
  #offset = PRELOAD_OFFSET;

  private constructor(
    readonly lab: Lab,
    readonly agent: FakeAgent,
    readonly store: RigStore,
    readonly argv: readonly string[],
    readonly url: string,
  ) {}

  static async create(lab: Lab, store: RigStore, postgres?: RigPostgres): Promise<ScaleRig> {
    if ((store === 'postgres') !== (postgres !== undefined)) throw new Error('the postgres store, and only it, takes a PostgreSQL server');
    const tls = join(lab.dir, 'tls');
    const addr = lab.addresses;
    const agentCert = await makeServerCert({ dir: tls, cert: join(tls, 'ca.crt'), key: join(tls, 'ca.key') }, `bench-agent-${store}`, [`IP:${addr.mgmtRoot}`]);
    const agent = new FakeAgent(agentCert);
    await agent.listen(addr.mgmtRoot, AGENT_PORT);

    const user = await lookupUser(ORCHESTRATOR_USER);
    const dir = join(lab.dir, `bench-scale-${store}`);
    // The lab's hook and operator keys (the rig's client signs with them), and a key for the fake agent.
    const fakeAgentKeys = join(lab.dir, `bench-scale-${store}-agent-keys`);
    makePeerKeyFiles(fakeAgentKeys, [agentPeer('fake')]);
    const keysDir = join(dir, 'keys');
    privateCopies(keysDir, user, {
      hook: peerKeyFile(lab.keysDir, HOOK_PEER), operator: peerKeyFile(lab.keysDir, OPERATOR_PEER), agent: peerKeyFile(fakeAgentKeys, agentPeer('fake')),
    });
    const own = privateCopies(dir, user, {
      caFile: lab.caFile, cert: join(tls, 'orchestrator.crt'), key: join(tls, 'orchestrator.key'),
      metricsTokenFile: lab.metricsTokenFile,
    });
    const ini = join(dir, 'orchestrator.ini');
    const db = join(dir, 'state.db');
    let sql = store === 'site' ? siteSql(db).ini : store === 'sqlite' ? `[sql]\nenabled = true\npath = ${db}\n` : '[sql]\nenabled = false\n';
    if (postgres) {
      await postgres.server.createDatabase(postgres.database);
      const password = privateCopies(join(dir, 'postgres'), user, { file: postgres.server.passwordFile }).file!;
      sql = `[store]\nurl = ${postgres.server.url(postgres.database)}\npassword_file = ${password}\n`;
    }
    writeFileSync(ini, scaleIni({ ...own, keysDir, prefix: `${lab.prefix}:5::/64`, agentUrl: `https://[${addr.mgmtRoot}]:${AGENT_PORT}`, sql }), { mode: 0o600 });
    chownSync(ini, user.uid, user.gid);
    // As the systemd unit starts it (its bundle, heap limits and malloc arenas), as the lab runs it.
    const argv = inNs(lab.names.orch, asUser(user, [...unitCommand('orchestrator.service'), '--config', ini]));
    return new ScaleRig(lab, agent, store, argv, `https://[${addr.mgmtOrch}]:${PORT}`);
  }

  get api(): OrchestratorApi {
    if (!this.#api) throw new Error('the scale orchestrator is not running');
    return this.#api;
  }

  /** Start the daemon; with `adopt`, wait until it has adopted every container the fake agent reports. */
  async start(options: { adopt?: boolean } = {}): Promise<{ ms: number }> {
    const t0 = performance.now();
    const proc = spawnManaged(`bench scale orchestrator (${this.store})`, this.argv, { logFile: join(this.lab.logDir, `bench-scale-${this.store}.log`) });
    this.#proc = proc;
    // /readyz: 200 once it serves its API (with PostgreSQL, once it leads; a standby's is 503).
    await waitFor('the scale orchestrator', async () => ((await httpsGet(`${this.url}/readyz`, this.lab.caFile)).status === 200 ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 100,
      abort: () => (proc.running ? undefined : `exited: ${proc.tail(5)}`),
    });
    this.#api = new OrchestratorApi({ url: this.url, caFile: this.lab.caFile, keysDir: this.lab.keysDir, connections: 32 });
    if (options.adopt) {
      const expected = this.agent.containers.size;
      await waitFor(`adoption of ${expected} containers`, async () => {
        const agents = (await this.api.get<{ agents: Array<{ instances: number }> }>('/v1/agents')).agents;
        return (agents[0]?.instances ?? 0) >= expected ? true : undefined;
      }, { timeoutMs: 300_000, intervalMs: 250, abort: () => (proc.running ? undefined : `exited: ${proc.tail(5)}`) });
      await this.drain();
    }
    return { ms: Math.round(performance.now() - t0) };
  }

  async stop(): Promise<void> {
    await this.#api?.close().catch(() => undefined);
    this.#api = undefined;
    await this.#proc?.stop({ graceMs: 10_000 });
    this.#proc = undefined;
  }

  async close(): Promise<void> {
    await this.stop();
    await this.agent.close();
  }

  /** The daemon's pid (for its CPU time), while it runs. */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  rss(): ReturnType<typeof rssOf> {
    return rssOf(this.#proc?.pid);
  }

  async #metrics(): Promise<string | undefined> {
    const token = readFileSync(this.lab.metricsTokenFile, 'utf8').trim();
    const result = await run(['curl', '-sS', '-g', '--noproxy', '*', '--max-time', '10', '--cacert', this.lab.caFile, '-H', `authorization: Bearer ${token}`, `${this.url}/metrics`]);
    return result.code === 0 ? result.stdout : undefined;
  }

  /** The memory trims the daemon has run ([memory] trim_idle_seconds), and the last one's pause in ms (from the histogram's sum). */
  async trims(): Promise<{ count: number; sumMs: number }> {
    const text = (await this.#metrics()) ?? '';
    const value = (name: string) => Number(new RegExp(`^orchestrator_memory_trim_seconds_${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { count: value('count'), sumMs: Math.round(value('sum') * 1000) };
  }

  /**
   * Wait for the daemon's next memory trim after `since` trims (it runs
   * [memory] trim_idle_seconds after the last event applied), at most
   * `timeoutMs`; the trim's pause in ms, or undefined if none came.
   */
  async waitForTrim(since: { count: number; sumMs: number }, timeoutMs = 90_000): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const now = await this.trims();
      if (now.count > since.count) return now.sumMs - since.sumMs;
      await sleep(1000);
    }
    return undefined;
  }

  /** The daemon's V8 heap (used, total) in MB from its /metrics (prom-client's default metrics), to set beside its RSS. */
  async heap(): Promise<{ usedMb: number; totalMb: number } | undefined> {
    const text = await this.#metrics();
    const result = { code: text === undefined ? 1 : 0, stdout: text ?? '' };
    const mb = (name: string) => {
      const value = new RegExp(`^orchestrator_nodejs_heap_size_${name}_bytes (\\d+)`, 'm').exec(result.stdout)?.[1];
      return value === undefined ? Number.NaN : Math.round(Number(value) / 104857.6) / 10;
    };
    return result.code === 0 ? { usedMb: mb('used'), totalMb: mb('total') } : undefined;
  }

  /** Give the fake agent labelled running containers for new devices, up to `total` devices (adopted at the next start). */
  preload(total: number): void {
    while (this.devices.length < total) {
      const device = syntheticDevice(this.lab);
      this.devices.push(device);
      const offset = this.#offset++;
      const address = `${this.lab.prefix}:5::${(offset >>> 16).toString(16)}:${(offset & 0xffff).toString(16)}/64`;
      const name = containerNameOf(device.clientId);
      this.agent.containers.set(name, {
        name,
        id: `fake${name}`.padEnd(64, '0'),
        image: 'unionize-client:latest',
        state: 'running',
        labels: {
          'io.unionize.managed': 'true',
          [LABELS.clientId]: device.clientId,
          [LABELS.server]: LAB_SERVER,
          [LABELS.duid]: device.duid,
          [LABELS.iaid]: device.iaid,
          [LABELS.deviceAddress]: device.address,
        },
        address,
        mac: macOf(device.clientId),
        createdAt: new Date().toISOString(),
      });
    }
  }

  /** Post `action` events for `count` devices (new ones for `add`, unknown ones for `del`), 32 at a time; then wait for the queue. */
  async post(action: 'add' | 'del', count: number): Promise<{ ms: number; perSecond: number }> {
    return this.#sendEach(count, [action], action === 'add');
  }

  /** `count` clients that came and went: an `add` (a client, a container on the fake agent) then a `del` each, applied. */
  async postGone(count: number): Promise<{ ms: number; perSecond: number }> {
    return this.#sendEach(count, ['add', 'del'], false);
  }

  /** For each of `count` new synthetic devices, these events in order (32 devices at a time), then wait for the queue to drain. */
  async #sendEach(count: number, actions: readonly ('add' | 'del')[], remember: boolean): Promise<{ ms: number; perSecond: number }> {
    const t0 = performance.now();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        const device = syntheticDevice(this.lab);
        if (remember) this.devices.push(device);
        for (const action of actions) {
          const { status } = await this.api.call('POST', '/v1/lease-events', { body: JSON.stringify(leaseEvent(action, device)) });
          if (status !== 202) throw new Error(`${action}: HTTP ${status}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    await this.drain();
    const ms = performance.now() - t0;
    return { ms: Math.round(ms), perSecond: Math.round(count / (ms / 1000)) };
  }

  async drain(timeoutMs = 600_000): Promise<void> {
    await waitFor('the scale orchestrator queue to drain', async () => {
      const { json } = await this.api.call('GET', '/readyz', { sign: false });
      return (json as { queued?: number } | null)?.queued === 0 ? true : undefined;
    }, { timeoutMs, intervalMs: 100 });
  }

  /**
   * Apply latency of one event, sent alone: the orchestrator's appliedAt minus
   * its receivedAt (its own clock, ms resolution), read back from the journal.
   * `add` is a new device (provisioned through the fake agent), `old` a renewal
   * of a known one (refreshed).
   */
  async applyLatency(action: Action, runs: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < runs; i++) {
      const device = action === 'add' ? syntheticDevice(this.lab) : this.devices[Math.floor(Math.random() * this.devices.length)]!;
      if (action === 'add') this.devices.push(device);
      const event = leaseEvent(action, device);
      const { status } = await this.api.call('POST', '/v1/lease-events', { body: JSON.stringify(event) });
      if (status !== 202) throw new Error(`${action}: HTTP ${status}`);
      const applied = await waitFor(`event ${event.eventId} applied`, async () => {
        const events = (await this.api.get<{ events: Array<{ eventId: string; receivedAt: string; appliedAt: string | null; outcome: string | null; outcomeKind: EventOutcomeKind | null }> }>('/v1/events?limit=3')).events;
        const mine = events.find((e) => e.eventId === event.eventId);
        return mine?.appliedAt ? mine : undefined;
      }, { timeoutMs: 30_000, intervalMs: 5 });
      if (applied.outcomeKind !== (action === 'add' ? 'provisioned' : 'refreshed')) throw new Error(`${action}: outcome ${applied.outcome}`);
      out.push(Date.parse(applied.appliedAt!) - Date.parse(applied.receivedAt));
      await sleep(5);
    }
    return out;
  }

  /**
   * GET /v1/clients?limit=100 (one page, from the middle of the id space) on a
   * warm keep-alive connection. The cursor is the middle of the ids this rig
   * gave the daemon; `clients` is counted afterwards, with the whole list: its
   * 8 MB of JSON at 10,000 clients, parsed here just before the timed pages,
   * had this process's own collector (10-30 ms) inside them.
   */
  async listLatency(runs: number): Promise<{ ms: number[]; clients: number; bytes: number }> {
    const ids = this.devices.map((d) => d.clientId).sort();
    const middle = ids[Math.floor(ids.length / 2)]!;
    const ms: number[] = [];
    let bytes = 0;
    for (let i = 0; i < runs; i++) {
      const path = `/v1/clients?limit=100&after=${middle}`;
      const t0 = performance.now();
      const { status, json } = await this.api.call('GET', path);
      ms.push(performance.now() - t0);
      if (status !== 200) throw new Error(`GET ${path}: HTTP ${status}`);
      if (i === 0) bytes = Buffer.byteLength(JSON.stringify(json));
    }
    const whole = await this.api.call('GET', '/v1/clients');
    if (whole.status !== 200) throw new Error(`GET /v1/clients: HTTP ${whole.status}`);
    return { ms, clients: (whole.json as { clients: unknown[] }).clients.length, bytes };
  }
}

function scaleIni(p: {
  cert?: string; key?: string; caFile?: string; keysDir: string; metricsTokenFile?: string; prefix: string; agentUrl: string;
  /** The whole store section ([sql], or [store] for PostgreSQL), header included. */
  sql: string;
}): string {
  return `[server]
listen = ::
port = ${PORT}
cert = ${p.cert}
key = ${p.key}

[auth]
keys_dir = ${p.keysDir}

${p.sql.trim()}

[addressing]
mode = static
prefix = ${p.prefix}

[instances]
image = unionize-client:latest

[quotas]
max_instances = 0
max_per_agent = 0
max_per_mac = 0
max_without_mac = 0
max_per_prefix64 = 0
new_clients_per_minute = 0
new_clients_per_mac_per_minute = 0

[reconcile]
interval_seconds = 3600

[agents.fake]
url = ${p.agentUrl}
ca = ${p.caFile}
timeout_ms = 15000

[metrics]
token_file = ${p.metricsTokenFile}

[log]
level = info
`;
}
