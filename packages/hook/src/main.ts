#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { parseHookCall } from '@unionize/protocol/dnsmasq-call';
import { readSecretFile } from '@unionize/protocol/config';
import { loadServerTrust } from '@unionize/protocol/tls-pin';
import { loadHookConfig, type HookConfig } from './config.js';
import { deliverTo, keptAliveDelivery, type DeliverFn } from './deliver.js';
import { createLogger, type Log } from './log.js';
import { runHook, SPOOL_RESERVE_MS } from './run-hook.js';
import { Spool } from './spool.js';

/**
 * orchestrator-hook
 *
 *   as dnsmasq's --dhcp-script:  orchestrator-hook ACTION DUID ADDRESS [HOSTNAME]
 *     (config from $ORCHESTRATOR_HOOK_CONFIG): flush the spool, deliver the event
 *     or spool it, within [spool] budget_ms. Always exits 0: dnsmasq only logs the
 *     exit code (and for `init` with --leasefile-ro a non-zero code stops dnsmasq).
 *   orchestrator-hook --flush [--interval SECONDS] [--config FILE]
 *     deliver the spool once (exit 0 when empty, 75 when events remain), or as
 *     the flusher daemon: at once when something is spooled (the directory is
 *     watched), at least every SECONDS, over one kept-alive connection, until
 *     SIGTERM. dnsmasq/orchestrator-hook.sh spools dnsmasq's calls for it.
 *   orchestrator-hook --flush --budget
 *     one round within [spool] budget_ms, exit 0: what the shell hook runs
 *     when no flusher holds the spool.
 */
const log = createLogger({ syslog: true });
/** Milliseconds since this process started (performance.timeOrigin): the budget counts node's start-up too. */
const now = () => performance.now();

function targetOf(config: HookConfig) {
  return {
    url: config.orchestrator.url,
    ...loadServerTrust(config.orchestrator, '[orchestrator]'),
    secret: readSecretFile(config.orchestrator.secret_file),
  };
}

function deliverFor(config: HookConfig): DeliverFn {
  return deliverTo(targetOf(config));
}

/**
 * The long-running flusher's delivery: one kept-alive connection, made anew
 * only when the secret, CA or pin change (they are read again every round, so
 * a rotation needs no restart).
 */
function keptAliveDeliveryFor(config: HookConfig): { makeDeliver: () => DeliverFn; close: () => void } {
  let current: { key: string; delivery: ReturnType<typeof keptAliveDelivery> } | null = null;
  return {
    makeDeliver: () => {
      const target = targetOf(config);
      const key = [target.secret, target.ca, target.pin].map((b) => b?.toString('base64') ?? '').join(' ');
      if (current?.key !== key) {
        current?.delivery.close();
        current = { key, delivery: keptAliveDelivery(target, config.orchestrator.timeout_ms) };
      }
      return current.delivery.deliver;
    },
    close: () => current?.delivery.close(),
  };
}

function spoolFor(config: HookConfig): Spool {
  return new Spool({ dir: config.spool.dir, maxEvents: config.spool.max_events });
}

async function hookCall(argv: string[]): Promise<void> {
  const config = loadHookConfig(process.env);
  const deadline = config.spool.budget_ms;
  // Backstop: whatever hangs, dnsmasq's script queue moves on.
  setTimeout(() => {
    log('error', `time budget of ${deadline} ms exceeded: exiting`);
    process.exit(0);
  }, Math.max(0, deadline - now())).unref();
  const call = parseHookCall(argv, process.env, {
    server: config.dhcp.server,
    role: config.dhcp.role,
    now: new Date(),
    newId: randomUUID,
  });
  if (call.kind !== 'event') {
    log('info', `ignored: ${call.reason}`);
    return;
  }
  const { event } = call;
  for (const warning of call.warnings) log('warn', warning, { eventId: event.eventId });
  let deliver: DeliverFn;
  try {
    deliver = deliverFor(config);
  } catch (error) {
    // An unreadable secret or CA must not cost the event: spool it for when it is fixed.
    const reason = (error as Error).message;
    log('error', `cannot deliver: ${reason}`);
    deliver = async () => ({ ok: false, retryable: true, reason });
  }
  await runHook({
    event,
    spool: spoolFor(config),
    deliver,
    log,
    timeoutMs: config.orchestrator.timeout_ms,
    now,
    deadline,
  });
}

async function flushCommand(argv: string[]): Promise<number> {
  let values: { flush?: boolean; interval?: string; budget?: boolean; config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        flush: { type: 'boolean' }, interval: { type: 'string' }, budget: { type: 'boolean' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`orchestrator-hook: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help || !values.flush) {
    process.stderr.write(USAGE);
    return values.help ? 0 : 2;
  }
  let intervalMs: number | undefined;
  if (values.interval !== undefined) {
    const seconds = Number(values.interval);
    if (!Number.isFinite(seconds) || seconds < 1 || seconds > 86_400) {
      process.stderr.write(`orchestrator-hook: --interval must be a number of seconds from 1 to 86400, got ${JSON.stringify(values.interval)}\n`);
      return 2;
    }
    intervalMs = seconds * 1000;
  }
  if (values.budget && intervalMs !== undefined) {
    process.stderr.write('orchestrator-hook: --budget is for one round (dnsmasq/orchestrator-hook.sh without a flusher), not with --interval\n');
    return 2;
  }
  const config = loadHookConfig(process.env, values.config);
  const { flushRound, runFlusher } = await import('./flusher.js');
  const options = {
    spool: spoolFor(config),
    makeDeliver: () => deliverFor(config),
    log,
    timeoutMs: config.orchestrator.timeout_ms,
    now,
  };
  if (values.budget) {
    // Run by the shell hook for dnsmasq when no flusher runs: dnsmasq waits, so keep to budget_ms, and always exit 0.
    const deadline = config.spool.budget_ms;
    setTimeout(() => {
      log('error', `time budget of ${deadline} ms exceeded: exiting (the rest stays spooled)`);
      process.exit(0);
    }, Math.max(0, deadline - now())).unref();
    exitCodeOf(await flushRound({ ...options, deadline: deadline - SPOOL_RESERVE_MS, lockWaitMs: 250 }), log);
    return 0;
  }
  if (intervalMs === undefined) return exitCodeOf(await flushRound(options), log);

  const abort = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => abort.abort());
  const delivery = keptAliveDeliveryFor(config);
  try {
    await runFlusher({ ...options, makeDeliver: delivery.makeDeliver, intervalMs, signal: abort.signal });
  } finally {
    delivery.close();
  }
  return 0;
}

function exitCodeOf(round: Awaited<ReturnType<typeof import('./flusher.js').flushRound>>, log: Log): number {
  if ('error' in round) {
    log('error', `flush failed: ${round.error}`);
    return 1;
  }
  if ('busy' in round) {
    log('warn', `spool lock held by pid ${round.heldBy ?? '?'}: nothing flushed`);
    return 75;
  }
  log(round.stopped ? 'warn' : 'info', round.stopped ? `spool not fully flushed: ${round.reason ?? round.stopped}` : 'spool flushed', {
    delivered: round.delivered, rejected: round.rejected, remaining: round.remaining,
  });
  return round.remaining > 0 ? 75 : 0;
}

const USAGE = `usage: orchestrator-hook ACTION DUID ADDRESS [HOSTNAME]     (as dnsmasq's --dhcp-script)
       orchestrator-hook --flush [--interval SECONDS] [--config FILE]
       orchestrator-hook --flush --budget     (one round within [spool] budget_ms; dnsmasq/orchestrator-hook.sh)
config: --config FILE, else $ORCHESTRATOR_HOOK_CONFIG, else /etc/orchestrator/hook.ini
`;

const argv = process.argv.slice(2);
// dnsmasq's first argument is an action (add, old, del…), never an option.
if (argv[0]?.startsWith('-')) {
  flushCommand(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      log('error', error instanceof Error ? error.message : String(error));
      process.exitCode = 1;
    },
  );
} else {
  hookCall(argv).catch((error: unknown) => {
    // Nothing was spooled: keep the call in the log, its last copy.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('DNSMASQ_')));
    log('error', `event lost: ${error instanceof Error ? error.message : String(error)}`, { argv, env });
  }).finally(() => {
    process.exitCode = 0;
  });
}
