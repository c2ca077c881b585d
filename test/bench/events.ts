import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { clientDetailSchema, clientIdOf, parseHookCall, type ClientDetail, type LeaseEvent } from '@unionize/protocol';
import type { Lab } from '../lab/lab.js';
import { inNs } from '../lab/netns.js';
import { labEnv, run, sleep, type CommandResult } from '../lab/process.js';
import type { OrchestratorApi } from '../support/orchestrator-api.js';

/**
 * Synthetic devices: what dnsmasq would pass its --dhcp-script for a DHCPv6
 * lease, with a DUID nobody else has. Their addresses are on the device /64
 * but outside dnsmasq's range (P:1::1000-1fff), so they never collide with a
 * real device's lease.
 */

/** The lab hook's DHCP server name (test/lab/daemons.ts hookIni). */
export const LAB_SERVER = 'devnet';

export interface SyntheticDevice {
  duid: string;
  iaid: string;
  mac: string;
  address: string;
  hostname: string;
  clientId: string;
}

let made = 0;

function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

export function syntheticDevice(lab: Pick<Lab, 'prefix'>, server = LAB_SERVER): SyntheticDevice {
  const k = ++made;
  const mac = randomMac();
  // DUID-LL (RFC 8415 §11.4: type 3, hardware type 1, the MAC), as many devices send.
  const duid = `00:03:00:01:${mac}`;
  const iaid = String(randomInt(1, 2 ** 31));
  // P:1::1:0 and up: never in dnsmasq's range (P:1::1000-1fff), unique for 2^32 devices.
  const address = `${lab.prefix}:1::${(1 + (k >>> 16)).toString(16)}:${(k & 0xffff).toString(16)}`;
  return { duid, iaid, mac, address, hostname: `bench-${k}`, clientId: clientIdOf(server, duid, iaid) };
}

/** dnsmasq's environment for a DHCPv6 script call (dnsmasq(8), --dhcp-script). */
export function dnsmasqEnv(device: SyntheticDevice, leaseSeconds = 600): Record<string, string> {
  return {
    DNSMASQ_IAID: device.iaid,
    DNSMASQ_MAC: device.mac,
    DNSMASQ_INTERFACE: 'brdev',
    DNSMASQ_LEASE_EXPIRES: String(Math.floor(Date.now() / 1000) + leaseSeconds),
    DNSMASQ_TIME_REMAINING: String(leaseSeconds),
    DNSMASQ_SERVER_DUID: '00:01:00:01:2c:00:00:00:02:00:00:00:00:01',
    DNSMASQ_TAGS: 'brdev',
  };
}

export type Action = 'add' | 'old' | 'del';

export function hookArgv(action: Action, device: SyntheticDevice): string[] {
  return [action, device.duid, device.address, device.hostname];
}

/** The event the hook would send for this call: made by the hook's own parser. */
export function leaseEvent(action: Action, device: SyntheticDevice, server = LAB_SERVER): LeaseEvent {
  const call = parseHookCall(hookArgv(action, device), dnsmasqEnv(device), {
    server,
    role: 'device',
    now: new Date(),
    newId: randomUUID,
  });
  if (call.kind !== 'event') throw new Error(`synthetic call ignored: ${call.reason}`);
  return call.event;
}

export interface Timed extends CommandResult {
  ms: number;
  /** Wall clock (Date.now()) just before the spawn. */
  startedAt: number;
}

/** Run a command, timing it from just before the spawn to its exit. */
export async function timedRun(argv: readonly string[], env?: Record<string, string>, timeoutMs = 30_000): Promise<Timed> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const result = await run(argv, { env: labEnv(env), timeoutMs });
  return { ...result, ms: Math.round((performance.now() - t0) * 10) / 10, startedAt };
}

/** Call the lab's real hook (its wrapper, as dnsmasq would) in the orchestrator namespace. */
export function callHook(lab: Lab, action: Action, device: SyntheticDevice): Promise<Timed> {
  return timedRun(inNs(lab.names.orch, [lab.hookWrapper, ...hookArgv(action, device)]), dnsmasqEnv(device));
}

export async function postEvent(api: OrchestratorApi, event: LeaseEvent): Promise<number> {
  return (await api.call('POST', '/v1/lease-events', { body: JSON.stringify(event) })).status;
}

/** GET /v1/clients/:id; undefined while it is not known. */
export async function getClient(api: OrchestratorApi, clientId: string): Promise<ClientDetail | undefined> {
  const { status, json } = await api.call('GET', `/v1/clients/${clientId}`);
  if (status === 404) return undefined;
  if (status !== 200) throw new Error(`GET /v1/clients/${clientId}: ${status} ${JSON.stringify(json)}`);
  return clientDetailSchema.parse(json);
}

/** Poll a client every `intervalMs` until `done`, or throw after `timeoutMs` with its last state. */
export async function pollClient(
  api: OrchestratorApi,
  clientId: string,
  done: (c: ClientDetail) => boolean,
  options: { intervalMs?: number; timeoutMs?: number } = {},
): Promise<{ client: ClientDetail; observedAt: number; polls: number }> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: ClientDetail | undefined;
  for (let polls = 1; ; polls++) {
    last = await getClient(api, clientId);
    if (last && done(last)) return { client: last, observedAt: Date.now(), polls };
    if (Date.now() > deadline) throw new Error(`client ${clientId}: not done after ${options.timeoutMs ?? 30_000} ms (last: ${last ? `${last.state}: ${last.stateReason}` : 'unknown'})`);
    await sleep(options.intervalMs ?? 10);
  }
}

/** The time (ms since the epoch, the orchestrator's clock: the same host) of the client's latest transition to `state`. */
export function transitionAt(client: ClientDetail, state: string): number | undefined {
  const t = client.transitions.find((x) => x.to === state);
  return t ? Date.parse(t.at) : undefined;
}

/** Release a synthetic device (a `del` posted directly, not through the hook) and wait until its container is gone. */
export async function releaseSynthetic(api: OrchestratorApi, device: SyntheticDevice): Promise<void> {
  const status = await postEvent(api, leaseEvent('del', device));
  if (status !== 202) throw new Error(`del ${device.clientId}: HTTP ${status}`);
  await pollClient(api, device.clientId, (c) => c.state === 'gone' || c.state === 'failed', { intervalMs: 20, timeoutMs: 30_000 });
}
