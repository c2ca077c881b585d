#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import { parseHookCall } from '@unionize/protocol/dnsmasq-call';
import { readSecretFile } from '@unionize/protocol/config';
import { loadServerTrust } from '@unionize/protocol/tls-pin';
import { loadHookConfig } from './config.js';
import { deliverEvent } from './deliver.js';

/**
 * orchestrator-hook: dnsmasq's --dhcp-script. One call, one signed lease event.
 * It always exits 0: dnsmasq only logs the exit code (and for `init` with
 * --leasefile-ro a non-zero code would stop dnsmasq), so failures are logged.
 */
function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), name: 'orchestrator-hook', msg, ...fields })}\n`);
}

async function main(): Promise<void> {
  const config = loadHookConfig(process.env);
  const call = parseHookCall(process.argv.slice(2), process.env, {
    server: config.dhcp.server,
    role: config.dhcp.role,
    now: new Date(),
    newId: randomUUID,
  });
  if (call.kind === 'ignored') {
    log('info', `ignored: ${call.reason}`);
    return;
  }
  const { event } = call;
  for (const warning of call.warnings) log('warn', warning, { eventId: event.eventId });
  const result = await deliverEvent(event, {
    url: config.orchestrator.url,
    ...loadServerTrust(config.orchestrator, '[orchestrator]'),
    secret: readSecretFile(config.orchestrator.secret_file),
    timeoutMs: config.orchestrator.timeout_ms,
  });
  if (result.ok) {
    log('info', 'delivered', { eventId: event.eventId, action: event.action, duid: event.duid, status: result.status });
  } else {
    log('error', `not delivered: ${result.reason}`, { eventId: event.eventId, status: result.status, retryable: result.retryable });
  }
}

main().catch((error: unknown) => {
  log('error', error instanceof Error ? error.message : String(error));
}).finally(() => {
  process.exitCode = 0;
});
