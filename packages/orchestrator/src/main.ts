#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ConfigError, RequestVerifier, listenHttps, loadServerTrust, readSecretFile, redact } from '@unionize/protocol';
import { HttpsAgentClient } from './agents/agent-client.js';
import { withRetry } from './agents/with-retry.js';
import { createApp } from './api/app.js';
import { systemClock } from './clock.js';
import { loadOrchestratorConfig, quotaLimits, type OrchestratorConfig } from './config.js';
import { EventDispatcher } from './events/dispatcher.js';
import { Lifecycle } from './lifecycle/lifecycle.js';
import { Quotas } from './lifecycle/quotas.js';
import { Reconciler } from './reconcile/reconciler.js';
import { MemoryStore } from './store/memory-store.js';
import { SqliteStore } from './store/sqlite-store.js';
import type { Store } from './store/store.js';

function openStore(config: OrchestratorConfig): Store {
  if (!config.sql.enabled) return new MemoryStore({ prefix: config.addressing.prefix });
  return new SqliteStore({ path: config.sql.path, prefix: config.addressing.prefix });
}

/** Wiring only: config → logger → store → agents → lifecycle → API → reconciler → signals. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } } });
  if (!values.config) throw new ConfigError('usage: orchestrator --config FILE');
  const config = loadOrchestratorConfig(values.config);
  const secret = readSecretFile(config.auth.secret_file);
  const log = pino({ name: 'orchestrator', level: config.log.level });
  log.info({ config: redact(config) }, 'starting');
  if (process.getuid?.() === 0) log.warn('running as root: the orchestrator needs no privilege; run it as its own user');

  const trusts = Object.entries(config.agents).map(([name, agent]) => [name, loadServerTrust(agent, `config ${values.config}: [agents.${name}]`)] as const);
  const store = openStore(config);
  const agents = trusts.map(([name, trust]) => {
    const agent = config.agents[name]!;
    return withRetry(new HttpsAgentClient({ name, url: agent.url, trust, secret, timeoutMs: agent.timeout_ms }), {
      attempts: agent.attempts,
      baseDelayMs: 200,
    });
  });
  const quotas = new Quotas(quotaLimits(config), systemClock);
  const lifecycle = new Lifecycle({ store, agents, clock: systemClock, log, image: config.instances.image, prefixLength: 64, quotas });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock: systemClock, log, concurrency: config.instances.concurrency });
  const reconciler = new Reconciler({
    store,
    lifecycle,
    dispatcher,
    agents,
    clock: systemClock,
    log,
    adoptUnknown: !config.sql.enabled,
    adoptGraceMs: config.reconcile.adopt_grace_seconds * 1000,
    expiryGraceMs: config.reconcile.expiry_grace_seconds * 1000,
    keepEvents: config.reconcile.keep_events,
  });
  const app = createApp({ store, dispatcher, lifecycle, agents, verifier: new RequestVerifier({ secret }), log });

  // Journaled but unapplied events first (per client in order), then the listener.
  const resumed = dispatcher.resume();
  const { server, port } = await listenHttps({
    fetch: app.fetch,
    host: config.server.listen,
    port: config.server.port,
    certFile: config.server.cert,
    keyFile: config.server.key,
  });
  log.info({ host: config.server.listen, port, resumed, store: config.sql.enabled ? config.sql.path : 'memory' }, 'listening (HTTPS)');
  reconciler.start(config.reconcile.interval_seconds * 1000);

  const shutdown = (signal: string) => {
    log.info({ signal }, 'stopping');
    reconciler.stop();
    dispatcher.stop();
    server.close();
    const done = () => {
      store.close();
      process.exit(0);
    };
    void Promise.race([dispatcher.idle(), new Promise((r) => setTimeout(r, 3000))])
      .then(() => Promise.all(agents.map((a) => a.close())))
      .finally(done);
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`orchestrator: ${message}\n`);
  process.exit(1);
});
