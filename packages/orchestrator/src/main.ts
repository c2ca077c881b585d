#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ConfigError, RequestVerifier, listenHttps, readSecretFile, redact } from '@unionize/protocol';
import { HttpsAgentClient } from './agents/agent-client.js';
import { createApp } from './api/app.js';
import { systemClock } from './clock.js';
import { loadOrchestratorConfig } from './config.js';
import { EventDispatcher } from './events/dispatcher.js';
import { Lifecycle } from './lifecycle/lifecycle.js';
import { MemoryStore } from './store/memory-store.js';

/** Wiring only: config → logger → store → agents → lifecycle → API → signals. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } } });
  if (!values.config) throw new ConfigError('usage: orchestrator --config FILE');
  const config = loadOrchestratorConfig(values.config);
  const secret = readSecretFile(config.auth.secret_file);
  const log = pino({ name: 'orchestrator', level: config.log.level });
  log.info({ config: redact(config) }, 'starting');

  if (config.sql.enabled) throw new ConfigError(`config ${values.config}: [sql] enabled: SQLite is not available in this build yet; set enabled = false`);
  const store = new MemoryStore({ prefix: config.addressing.prefix });
  const agents = Object.entries(config.agents).map(
    ([name, agent]) => new HttpsAgentClient({ name, url: agent.url, caFile: agent.ca, secret, timeoutMs: agent.timeout_ms }),
  );
  const lifecycle = new Lifecycle({ store, agents, clock: systemClock, log, image: config.instances.image, prefixLength: 64 });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock: systemClock, log, concurrency: config.instances.concurrency });
  const app = createApp({ store, dispatcher, lifecycle, agents, verifier: new RequestVerifier({ secret }), log });

  const { server, port } = await listenHttps({
    fetch: app.fetch,
    host: config.server.listen,
    port: config.server.port,
    certFile: config.server.cert,
    keyFile: config.server.key,
  });
  const resumed = dispatcher.resume();
  log.info({ host: config.server.listen, port, resumed }, 'listening (HTTPS)');

  const shutdown = (signal: string) => {
    log.info({ signal }, 'stopping');
    dispatcher.stop();
    server.close();
    void Promise.all(agents.map((a) => a.close())).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`orchestrator: ${message}\n`);
  process.exit(1);
});
