#!/usr/bin/env node
import { accessSync, constants } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ServerType } from '@hono/node-server';
import { ConfigError, KeyFile, Keyring, listenHttps, readSecretFile, redact, RequestVerifier } from '@unionize/protocol';
import { pino, type Logger } from 'pino';
import { createApp } from './api/app.js';
import { attacherFromConfig } from './attach/from-config.js';
import { loadConfig, type UnionizeConfig } from './config.js';
import { Provisioner } from './api/provisioner.js';
import { DockerEngineClient } from './docker/docker-client.js';
import { EngineHttp } from './docker/engine-http.js';
import { KeptImages } from './kept/kept-images.js';
import { Isolation } from './isolation/isolation.js';
import { createMetrics, poolMetricHooks } from './metrics/metrics.js';
import { WarmPool } from './pool/warm-pool.js';

/**
 * `unionize --config FILE`: the only place that wires config → logger → docker → attacher → app → HTTPS.
 * `unionize attach ...`: attach one container by hand, pipework's way (cli/attach-command.ts).
 */

const USAGE = 'usage: unionize --config FILE\n       unionize attach BRIDGE [-i IFNAME] CONTAINER ADDRESS/PREFIX[@GATEWAY]|dhcp [MAC]';
const SHUTDOWN_GRACE_MS = 10_000;

/** Start-up failures end here: one line on stderr, exit 1 (the logger may not exist yet). */
function die(message: string, code = 1): never {
  process.stderr.write(`unionize: ${message}\n`);
  process.exit(code);
}

function configFileFromArgs(argv: string[]): string {
  try {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (values.config) return values.config;
  } catch (error) {
    die(`${(error as Error).message}\n${USAGE}`, 2);
  }
  return die(USAGE, 2);
}

/** Name the key when the TLS files are unreadable, instead of a bare ENOENT from the listener. */
function checkTlsFiles(file: string, config: UnionizeConfig): void {
  for (const [key, path] of [['cert', config.server.certFile], ['key', config.server.keyFile]] as const) {
    try {
      accessSync(path, constants.R_OK);
    } catch (error) {
      throw new ConfigError(`config ${file}: [server] ${key}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
}

function handleSignals(server: ServerType, log: Logger, pool: WarmPool | undefined): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    // Members stay for the next start (restore); a member half made is removed by it.
    pool?.stop();
    log.info({ signal }, 'stopping: finishing in-flight requests');
    // close() waits for in-flight requests (an attach is not cut halfway); idle keep-alives go now.
    server.close(() => {
      log.info('stopped');
      process.exit(0);
    });
    if ('closeIdleConnections' in server) server.closeIdleConnections();
    setTimeout(() => {
      log.warn({ graceMs: SHUTDOWN_GRACE_MS }, 'requests still running after the grace period; exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * Before serving: the filter rebuilt from the containers the engine runs
 * (their labels), written whole; mode open drops what a filtering run left.
 * A filter that cannot be written stops the daemon (fail closed, not open).
 */
async function startIsolation(isolation: Isolation, provisioner: Provisioner, log: Logger): Promise<void> {
  if (isolation.filtering) {
    // Docker not up yet: an empty filter now; the orchestrator's requests and reconcile passes fill it.
    await provisioner.restoreIsolation().catch((error: Error) => log.warn({ err: error }, 'isolation: containers not listed at start'));
  }
  try {
    await isolation.write();
  } catch (error) {
    if (isolation.filtering) die(`[isolation] cannot write the nftables ruleset: ${(error as Error).message}`);
    log.warn({ err: error }, 'isolation: mode open, and the old tables could not be dropped');
    return;
  }
  log.info({ mode: isolation.mode, containers: isolation.names().length }, 'isolation ready');
}

async function main(): Promise<void> {
  const file = configFileFromArgs(process.argv.slice(2));
  let config: UnionizeConfig;
  let keys: KeyFile;
  let metricsToken: Buffer | undefined;
  try {
    config = loadConfig(file);
    checkTlsFiles(file, config);
    keys = new KeyFile(config.auth.keyFile);
    metricsToken = config.metrics.tokenFile ? readSecretFile(config.metrics.tokenFile, '[metrics] token') : undefined;
  } catch (error) {
    if (error instanceof ConfigError) die(error.message);
    throw error;
  }

  const log = pino({ level: config.log.level, base: { service: 'unionize', pid: process.pid } });
  log.info({ config: redact(config) }, 'starting');
  keys.onReloadError = (error) => log.error({ err: error.message }, 'the key file changed and cannot be read: its keys read before stay in use');
  // One peer: the orchestrator, with this agent's own keys.
  const keyring = new Keyring({ orchestrator: keys });
  log.info({ keys: keyring.describe() }, 'accepting signed requests from these keys');

  const docker = new DockerEngineClient({ socketPath: config.docker.socket });
  const backend = attacherFromConfig(config.network, config.dhcp, config.docker.socket);
  const { attacher } = backend;
  try {
    await backend.preflight();
  } catch (error) {
    die((error as Error).message);
  }
  // DHCP clients whose container went away while we were not looking (or between DELETEs).
  backend.startReaper(log);
  // Docker may come up after us (unit ordering): say so, serve /healthz as 503 meanwhile.
  docker.ping().catch((error: Error) => log.warn({ err: error }, 'docker is not reachable yet'));

  const isolation = new Isolation({ ...config.isolation, gateway: config.network.gateway });
  const metrics = createMetrics({ docker, isolation, defaultMetrics: true });
  const pool: WarmPool | undefined = config.pool.maxContainers > 0
    ? new WarmPool({ docker, log, maxMembers: config.pool.maxContainers, busy: (): number => provisioner.ensuring, ...poolMetricHooks(metrics) })
    : undefined;
  const provisioner: Provisioner = new Provisioner({ docker, attacher, log, isolation, ...(pool ? { pool } : {}) });
  // Claims read back before the filter is rebuilt from the containers' labels (a claimed member's are in its record).
  await pool?.restore().catch((error: Error) => log.warn({ err: error }, 'pool: not restored at start (docker not up?); members left alone'));
  await startIsolation(isolation, provisioner, log);
  if (pool) metrics.watchPools(() => pool.status());

  const kept = new KeptImages({ http: new EngineHttp({ socketPath: config.docker.socket }), docker, log });
  const app = createApp({
    docker, attacher, isolation, kept, provisioner, ...(pool ? { pool } : {}), verifier: new RequestVerifier({ keys: keyring, notBefore: performance.timeOrigin }), network: config.network, log, metrics, ...(metricsToken ? { metricsToken } : {}),
  });
  let server: ServerType;
  try {
    ({ server } = await listenHttps({
      fetch: app.fetch,
      host: config.server.listen,
      port: config.server.port,
      certFile: config.server.certFile,
      keyFile: config.server.keyFile,
    }));
  } catch (error) {
    die(`cannot listen on [${config.server.listen}]:${config.server.port}: ${(error as Error).message}`);
  }
  log.info({ listen: config.server.listen, port: config.server.port, bridge: config.network.bridge }, 'listening');
  handleSignals(server, log, pool);
}

const fatal = (error: unknown) => die(error instanceof Error ? (error.stack ?? error.message) : String(error));
if (process.argv[2] === 'attach') {
  // Loaded only for the command: the daemon needs none of its argument parsing.
  import('./cli/attach-command.js')
    .then(({ runAttachCommand }) => runAttachCommand(process.argv.slice(3)))
    .then((status) => process.exit(status), fatal);
} else {
  main().catch(fatal);
}
