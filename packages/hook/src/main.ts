#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { readKeyFile } from '@unionize/protocol/keys';
import { loadServerTrust } from '@unionize/protocol/tls-pin';
import { loadHookConfig, type HookConfig } from './config.js';
import { failoverDelivery, type DeliverFn, type DeliveryTarget } from './deliver.js';
import { runFlusher } from './flusher.js';
import { createLogger } from './log.js';
import { SourceValidation, nftRunner } from './sav.js';
import { Spool } from './spool.js';

/**
 * orchestrator-hook --flush --interval SECONDS [--config FILE]
 *
 * The spool's one reader: delivers what dnsmasq/orchestrator-hook.sh (dnsmasq's
 * --dhcp-script, the one writer) spools, at once when something is spooled
 * (the directory is watched), at least every SECONDS, over one kept-alive
 * connection, in order, until SIGTERM. Exits non-zero, saying why, when its
 * config is not fully understood or another flusher holds the spool.
 */
const log = createLogger({ syslog: true });

function targetsOf(config: HookConfig): DeliveryTarget[] {
  const trust = loadServerTrust(config.orchestrator, '[orchestrator]');
  // The first key signs; read every round, so `orchestratorctl keys retire hook` is picked up.
  const key = readKeyFile(config.orchestrator.key_file)[0]!;
  return config.orchestrator.url.map((url) => ({ url, ...trust, key }));
}

/**
 * One kept-alive connection per orchestrator, made anew only when the key,
 * CA or pin change (they are read again every round, so a rotation needs no
 * restart).
 */
function keptAliveDeliveryFor(config: HookConfig): { makeDeliver: () => DeliverFn; close: () => void } {
  let current: { key: string; delivery: ReturnType<typeof failoverDelivery> } | null = null;
  return {
    makeDeliver: () => {
      const targets = targetsOf(config);
      const [first] = targets;
      const key = [Buffer.from(first!.key.id), first!.key.secret, first!.ca, first!.pin].map((b) => b?.toString('base64') ?? '').join(' ');
      if (current?.key !== key) {
        current?.delivery.close();
        current = { key, delivery: failoverDelivery(targets, config.orchestrator.timeout_ms) };
      }
      return current.delivery.deliver;
    },
    close: () => current?.delivery.close(),
  };
}

async function main(argv: string[]): Promise<number> {
  let values: { flush?: boolean; interval?: string; config?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { flush: { type: 'boolean' }, interval: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    }));
  } catch (error) {
    process.stderr.write(`orchestrator-hook: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.flush || values.interval === undefined || positionals.length > 0) {
    process.stderr.write(`orchestrator-hook: only the flusher runs in node (--flush --interval SECONDS); dnsmasq runs dnsmasq/orchestrator-hook.sh\n${USAGE}`);
    return 2;
  }
  const seconds = Number(values.interval);
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > 86_400) {
    process.stderr.write(`orchestrator-hook: --interval must be a number of seconds from 1 to 86400, got ${JSON.stringify(values.interval)}\n`);
    return 2;
  }
  const config = loadHookConfig(process.env, values.config);
  if (config.spool.max_events !== undefined || config.spool.budget_ms !== undefined) {
    log('warn', '[spool] max_events and budget_ms are read by nothing now: the shell hook takes ORCHESTRATOR_HOOK_MAX_EVENTS from its wrapper or unit');
  }
  const abort = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => abort.abort());
  let sav: SourceValidation | undefined;
  if (config.sav.enabled) {
    sav = new SourceValidation({ ports: config.sav.ports, nft: nftRunner(config.sav.nft), log, stateFile: config.sav.state_file });
    await sav.start();
  }
  const delivery = keptAliveDeliveryFor(config);
  try {
    await runFlusher({
      spool: new Spool({ dir: config.spool.dir, dhcp: config.dhcp, maxCallBytes: config.spool.max_call_bytes }),
      makeDeliver: delivery.makeDeliver,
      log,
      timeoutMs: config.orchestrator.timeout_ms,
      now: () => performance.now(),
      intervalMs: seconds * 1000,
      signal: abort.signal,
      ...(sav ? { sav } : {}),
    });
  } finally {
    delivery.close();
  }
  return 0;
}

const USAGE = `usage: orchestrator-hook --flush --interval SECONDS [--config FILE]
config: --config FILE, else $ORCHESTRATOR_HOOK_CONFIG, else /etc/orchestrator/hook.ini
dnsmasq's --dhcp-script is dnsmasq/orchestrator-hook.sh (spool: $ORCHESTRATOR_HOOK_SPOOL)
`;

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    log('error', error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  },
);
