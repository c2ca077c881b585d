#!/usr/bin/env node
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import {
  ConfigError, HOOK_PEER, KeyFile, type FetchHandler, Keyring, OPERATOR_PEER, RequestVerifier, listenHttps, peerKeyFile, readSecretFile, redact,
} from '@unionize/protocol';
import { connectAgents } from './agents/connect.js';
import { createApp } from './api/app.js';
import { requestIdMixin } from './context/request-context.js';
import { DashboardAuth, StateHub, dashboardState } from './dashboard/index.js';
import { agentHealthFrom } from './metrics/agent-health.js';
import { createMetrics, observeState } from './metrics/metrics.js';
import { IdleTrim, lastResortGc } from './memory/idle-trim.js';
import { metricsObserver } from './metrics/observer.js';
import { systemClock } from './clock.js';
import { loadOrchestratorConfig, quotaLimits, type OrchestratorConfig } from './config.js';
import { AgentMonitor } from './agents/agent-monitor.js';
import { EventDispatcher } from './events/dispatcher.js';
import { Shares } from './shares/shares.js';
import { DnsmasqReload } from './pinning/dnsmasq-reload.js';
import { HostsPinner, livePins } from './pinning/hosts-pinner.js';
import { Bans } from './bans/bans.js';
import { buildProfiles, defaultProfile } from './profiles/profiles.js';
import { PoolSync } from './pools/pool-sync.js';
import { Lifecycle } from './lifecycle/lifecycle.js';
import { Quotas } from './lifecycle/quotas.js';
import { Reconciler } from './reconcile/reconciler.js';
import { Retention } from './retention/retention.js';
import { SeriesSampler, storeCounts } from './series/sampler.js';
import { MemoryStore } from './store/memory-store.js';
import type { Store } from './store/store.js';
import { fencedAgent } from './agents/fenced-agent.js';
import type { Pair } from './leadership/pair.js';

/** dhcp addressing has no pool: containers lease their own addresses. */
function poolPrefix(config: OrchestratorConfig): string | undefined {
  return config.addressing.mode === 'static' ? config.addressing.prefix : undefined;
}

async function openStore(config: OrchestratorConfig, log: Logger): Promise<Store> {
  const prefix = poolPrefix(config);
  if (!config.sql.enabled) return new MemoryStore({ maxEvents: config.sql.memory_events, ...(prefix ? { prefix } : {}) });
  // Loaded only when used: drizzle-orm and better-sqlite3 are memory the in-memory store does not need.
  const { SqliteStore } = await import('./store/sqlite-store.js');
  // A row that cannot be read is kept aside, not fatal: logged here, counted in /metrics (orchestrator_store_quarantined_rows).
  const onQuarantine = (row: { table: string; id: string; reason: string }) => log.error(row, 'unreadable store row moved to the quarantine table');
  return new SqliteStore({ path: config.sql.path, cacheMb: config.sql.cache_mb, ...(prefix ? { prefix } : {}), onQuarantine });
}

/** Wiring only: config → logger → store → agents → lifecycle → API → reconciler → signals. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } } });
  if (!values.config) throw new ConfigError('usage: orchestrator --config FILE');
  const config = loadOrchestratorConfig(values.config);
  const dashboardToken = config.dashboard.token_file ? readSecretFile(config.dashboard.token_file, '[dashboard] token') : undefined;
  const metricsToken = config.metrics.token_file ? readSecretFile(config.metrics.token_file, '[metrics] token') : undefined;
  // Every line logged while a lease event or request is handled carries its requestId.
  const log = pino({ name: 'orchestrator', level: config.log.level, mixin: requestIdMixin });
  log.info({ config: redact(config) }, 'starting');
  if (process.getuid?.() === 0) log.warn('running as root: the orchestrator needs no privilege; run it as its own user');

  // The client of each agent, as its [agents.NAME] section chooses (agents/connect.ts).
  const onKeyFileError = (error: Error) => log.error({ err: error.message }, 'a key file changed and cannot be read: its keys read before stay in use');
  // Of a pair: the epoch this orchestrator leads in, sent with every call that acts on an agent (set once it leads).
  let leaderEpoch: () => number | undefined = () => undefined;
  const connected = connectAgents(config, { keysDir: config.auth.keys_dir, configFile: values.config, onKeyFileError, leaderEpoch: () => leaderEpoch() });
  // Who may sign requests to this API, and what each may call (api/peer-access.ts).
  const keyring = new Keyring({
    [HOOK_PEER]: new KeyFile(peerKeyFile(config.auth.keys_dir, HOOK_PEER), { onReloadError: onKeyFileError }),
    [OPERATOR_PEER]: new KeyFile(peerKeyFile(config.auth.keys_dir, OPERATOR_PEER), { onReloadError: onKeyFileError }),
  });
  log.info({ keys: keyring.describe() }, 'accepting signed requests from these keys');
  const verifier = new RequestVerifier({ keys: keyring, notBefore: performance.timeOrigin });
  const listen = (fetch: FetchHandler) => listenHttps({
    fetch,
    host: config.server.listen,
    port: config.server.port,
    certFile: config.server.cert,
    keyFile: config.server.key,
  });

  // An orchestrator of a pair ([store] url: PostgreSQL) serves the standby's answers until it leads (leadership/pair.ts).
  // Passed on with its env (node's request and response: the body and the caller's address are read from them).
  let front: FetchHandler = () => new Response(null, { status: 503 });
  const served: FetchHandler = (request, env) => front(request, env);
  let listening: Awaited<ReturnType<typeof listen>> | undefined;
  let stop = (signal: string): void => {
    log.info({ signal }, 'stopping');
    process.exit(0);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  let pair: Pair | undefined;
  if (config.store.url) {
    const name = config.pair.name ?? hostname();
    const { standBy } = await import('./leadership/pair.js');
    listening = await listen(served);
    log.info({ host: config.server.listen, port: listening.port, name }, 'listening (HTTPS) as a standby of the pair');
    const waiting = standBy({
      store: { ...config.store, url: config.store.url }, name, url: config.pair.url, retryMs: config.pair.retry_ms, prefix: poolPrefix(config),
      verifier, log, setFetch: (fetch) => { front = fetch; },
    });
    stop = (signal) => {
      log.info({ signal }, 'stopping (standing by)');
      listening?.server.close();
      process.exit(0);
    };
    pair = await waiting;
    const leading = pair.leadership;
    leaderEpoch = () => leading.epoch();
  }
  const store = pair?.store ?? await openStore(config, log);
  // What a start finds already known: everything with SQLite or PostgreSQL, nothing in memory.
  const durable = pair !== undefined || config.sql.enabled;
  // A leader's calls that act on an agent first check that it still leads (agents/fenced-agent.ts).
  const agents = pair ? connected.map((agent) => fencedAgent(agent, pair.leadership)) : connected;
  const quotas = new Quotas(quotaLimits(config), systemClock);
  const monitor = await AgentMonitor.open({
    agents,
    settings: Object.entries(config.agents).map(([name, a]) => ({ name, url: a.url, capacity: a.capacity, drain: a.drain })),
    store,
    clock: systemClock,
    log,
    deadAfterMs: config.placement.dead_after_seconds * 1000,
  });
  const placement = {
    candidates: () => monitor.placeable(),
    capacity: (name: string) => monitor.status(name)?.capacity ?? 0,
    isDead: (name: string) => monitor.isDead(name),
  };
  const profiles = buildProfiles(config.profiles, config.instances.image);
  // Warm pools: each agent told which to keep (pools/pool-sync.ts).
  const poolSync = new PoolSync({
    agents, profiles: [...profiles, defaultProfile(config.instances.image, config.instances.pool)], log,
    status: (name) => monitor.status(name), instancesPerAgent: () => store.instancesPerAgent(),
  });
  const { hostsdir, reload_file: requestFile, dnsmasq_pidfile: pidFile, reload_interval_seconds: reloadSeconds } = config.pinning;
  const reload = requestFile || pidFile
    ? new DnsmasqReload({ ...(requestFile ? { requestFile } : {}), ...(pidFile ? { pidFile } : {}), intervalMs: reloadSeconds * 1000, log })
    : undefined;
  const pinner = hostsdir ? new HostsPinner({ dir: hostsdir, log, ...(reload ? { reload } : {}) }) : undefined;
  // Bans survive restarts (in SQLite); the pins directory is made to match the clients and bans as they are now
  // (the in-memory store knows no client at start: its pins stay, each released when its client goes).
  const bans = await Bans.open({ store, clock: systemClock, log, ...(pinner ? { entries: pinner } : {}) });
  if (pinner) {
    const pins = livePins(await store.listClients({ retired: false }), (c) => bans.banOf(c) !== undefined);
    log.info(pinner.sync(pins, bans.list(), { keepPins: !durable }), 'pins directory brought up to date');
  }
  const agentHealth = agentHealthFrom(monitor);
  const metrics = createMetrics({ defaultMetrics: true });
  // The dashboard's charts: the last hour, per minute, from the orchestrator's own numbers.
  const sampler = new SeriesSampler({ clock: systemClock, counts: storeCounts(store) });
  const observer = metricsObserver(metrics, { clock: systemClock, onLeaseToReady: (seconds) => sampler.observeLeaseToReady(seconds) });
  const lifecycle = new Lifecycle({
    store, agents, clock: systemClock, log, image: config.instances.image, prefixLength: 64, quotas, observer,
    addressing: config.addressing.mode, profiles, placement, bans, ...(pinner ? { pinner } : {}),
    pools: poolSync, defaultPool: config.instances.pool,
  });
  // After a burst, the memory it made goes back to the system once events stop (memory/idle-trim.ts).
  const gc = lastResortGc();
  const trim = config.memory.trim_idle_seconds > 0 && gc
    ? new IdleTrim({ idleMs: config.memory.trim_idle_seconds * 1000, gc, compact: () => store.compactMemory(), log, onTrim: (seconds) => metrics.memoryTrimSeconds.observe(seconds) })
    : undefined;
  if (config.memory.trim_idle_seconds > 0 && !gc) log.warn('node runs without --expose-gc (the unit gives it): memory is not trimmed after bursts');
  const dispatchObserver = trim
    ? { eventApplied: (...args: Parameters<typeof observer.eventApplied>) => { observer.eventApplied(...args); trim.noteActivity(); } }
    : observer;
  const dispatcher = new EventDispatcher({ store, lifecycle, clock: systemClock, log, concurrency: config.instances.concurrency, observer: dispatchObserver });
  const queueDepth = () => dispatcher.depth;
  observeState(metrics, { store, agentHealth, queueDepth, pools: (agent) => poolSync.pools(agent) });
  const reconciler = new Reconciler({
    store,
    lifecycle,
    dispatcher,
    agents,
    clock: systemClock,
    log,
    adoptUnknown: !durable,
    adoptGraceMs: config.reconcile.adopt_grace_seconds * 1000,
    expiryGraceMs: config.reconcile.expiry_grace_seconds * 1000,
    keepEvents: config.reconcile.keep_events,
    isDead: (name) => monitor.isDead(name),
  });
  const hub = new StateHub(() => dashboardState({ store, agentHealth, clock: systemClock, queueDepth, series: () => sampler.series(), bans: () => bans.list(), pools: (agent) => poolSync.pools(agent),
    ...(pair ? { leader: () => { const epoch = pair.leadership.epoch(); return epoch === undefined ? null : { name: pair.name, epoch }; } } : {}) }), config.dashboard.refresh_ms);
  const dashboard = { hub, ...(dashboardToken ? { auth: new DashboardAuth({ token: dashboardToken, ttlSeconds: config.dashboard.session_hours * 3600 }) } : {}) };
  const shares = config.share.dir
    ? new Shares({
        store, agents, clock: systemClock, log, dir: config.share.dir, maxSeconds: config.share.max_days * 86_400, maxBytes: config.share.max_mb * 1024 * 1024,
        ...(config.share.url ? { baseUrl: config.share.url } : {}),
      })
    : undefined;
  // Used and expired links go with their files: at start, then every minute.
  const expireShares = () => {
    shares?.expire().catch((error: unknown) => log.warn({ err: error }, 'could not remove used and expired share links'));
  };
  expireShares();
  const shareTimer = shares ? setInterval(expireShares, 60_000) : undefined;
  const app = createApp({
    store, dispatcher, lifecycle, agents, verifier, log,
    metrics, agentHealth, agentControl: monitor, pools: poolSync, dashboard, bans, ...(metricsToken ? { metricsToken } : {}), ...(shares ? { shares } : {}),
    ...(pair ? { leadership: pair.source } : {}),
  });

  // The agents' pools known before the first event (a request names a pool only where it is kept); an agent slow to answer is not waited for long.
  if (poolSync.wanted) await Promise.race([poolSync.syncAll(), new Promise((resolve) => setTimeout(resolve, POOL_SYNC_AT_START_MS).unref())]);
  // Journaled but unapplied events first (per client in order), then the listener.
  const resumed = await dispatcher.resume();
  front = app.fetch;
  const { server, port } = listening ?? await listen(served);
  const storeName = pair ? 'postgresql' : config.sql.enabled ? config.sql.path : 'memory';
  log.info({ host: config.server.listen, port, resumed, store: storeName, ...(pair ? { epoch: pair.leadership.epoch() } : {}) }, pair ? 'leading: serving the API (HTTPS)' : 'listening (HTTPS)');
  monitor.start(config.placement.health_interval_seconds * 1000);
  poolSync.start(config.placement.health_interval_seconds * 1000);
  reconciler.start(config.reconcile.interval_seconds * 1000);
  sampler.start(10_000);
  bans.start(config.reconcile.interval_seconds * 1000);
  const retention = new Retention({ store, clock: systemClock, log, goneDays: config.retention.gone_days });
  retention.start(config.retention.interval_seconds * 1000);
  log.info({ dashboard: Boolean(dashboardToken), metrics: Boolean(metricsToken) }, 'operator endpoints (on with their token_file)');

  stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    reconciler.stop();
    monitor.stop();
    poolSync.stop();
    sampler.stop();
    bans.stop();
    retention.stop();
    clearInterval(shareTimer);
    trim?.stop();
    dispatcher.stop();
    server.close();
    const done = async () => {
      reload?.close();
      // The lock last: the standby takes over once nothing here acts any more. Bounded: a database that does not answer does not hold the stop.
      const bounded = (work: Promise<unknown>) => Promise.race([work.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
      await bounded(store.close());
      if (pair) await bounded(pair.leadership.stop());
      process.exit(0);
    };
    void Promise.race([dispatcher.idle(), new Promise((r) => setTimeout(r, 3000))])
      .then(() => Promise.all(agents.map((a) => a.close())))
      .finally(done);
  };
}

/** How long start waits for the agents to answer their first PUT /v1/pools. */
const POOL_SYNC_AT_START_MS = 3_000;

// `orchestrator migrate …`: a one-off copy of a SQLite store into PostgreSQL (store/postgres/migrate-command.ts), not the daemon.
const run = process.argv[2] === 'migrate'
  ? import('./store/postgres/migrate-command.js').then(async ({ migrateCommand }) => {
      process.exitCode = await migrateCommand(process.argv.slice(3), { out: (text) => process.stdout.write(`${text}\n`), err: (text) => process.stderr.write(`${text}\n`) });
    })
  : main();

run.catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`orchestrator: ${message}\n`);
  process.exit(1);
});
