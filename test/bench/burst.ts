import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabDevice } from '../lab/lab.js';
import { sleep } from '../lab/process.js';
import type { OrchestratorApi } from '../support/orchestrator-api.js';
import { Dhclient } from './dhclient.js';
import type { Floor, FloorBurst } from './floor.js';
import { EMPTY_ADDRESS_WHY } from './lease.js';
import { figure, summarize, type Figure } from './stats.js';

interface ListedClient {
  id: string;
  duid: string;
  iaid: string;
  state: string;
  stateReason: string;
  updatedAt: string;
  instance: { address: string } | null;
}

/** The orchestrator's `[instances] concurrency` in the lab's config (8 when unset, the default). */
export function instanceConcurrency(lab: Lab): number {
  const text = readFileSync(join(lab.dir, 'orchestrator.ini'), 'utf8');
  const section = /\[instances\]([^[]*)/.exec(text)?.[1] ?? '';
  return Number(/^\s*concurrency\s*=\s*(\d+)/m.exec(section)?.[1] ?? 8);
}

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** The IAID dhclient sends: the MAC's last four octets (test/lab/devices.ts). */
const iaidOf = (mac: string) => String(parseInt(mac.split(':').slice(2).join(''), 16));

export interface Round {
  wallMs: number;
  perDevice: number[];
  ready: number;
  failed: string[];
  unreachable: number;
  noAddress: number;
  eventSpreadMs: number | null;
  /** dhclient spawn -> dnsmasq's first and last hook call for an add. */
  firstHookMs: number | null;
  lastHookMs: number | null;
  /** Per add: hook call -> journaled by the orchestrator (the spool and the flusher). */
  hookToReceived: number[];
  firstEventToAllReadyMs: number | null;
}

/** The devices (default all the lab's) start dhclient at once; the clock stops when the orchestrator has every one `ready`. */
export async function productRound(lab: Lab, api: OrchestratorApi, timeoutMs: number, devices: readonly LabDevice[] = lab.devices): Promise<Round> {
  const clients = devices.map((d) => new Dhclient(lab, d));
  const iaids = new Set(devices.map((d) => iaidOf(d.mac)));
  await pool(clients, 8, async (c) => void (await c.forget()));
  const t0 = Date.now();
  for (const c of clients) c.start();
  let mine: ListedClient[] = [];
  const deadline = t0 + timeoutMs;
  try {
    for (;;) {
      const all = (await api.get<{ clients: ListedClient[] }>('/v1/clients')).clients;
      mine = all.filter((c) => iaids.has(c.iaid) && Date.parse(c.updatedAt) >= t0);
      const settled = mine.filter((c) => c.state === 'ready' || c.state === 'failed').length;
      if ((mine.length === clients.length && settled === clients.length) || Date.now() > deadline) break;
      await sleep(100);
    }
    const ready = mine.filter((c) => c.state === 'ready');
    const perDevice = ready.map((c) => Date.parse(c.updatedAt) - t0);
    const duids = new Set(mine.map((c) => c.duid));
    const journaled = (await api.get<{ events: Array<{ duid: string; action: string; receivedAt: string; seenAt: string }> }>(`/v1/events?limit=${Math.min(1000, clients.length * 4 + 50)}`)).events
      .filter((e) => e.action === 'add' && duids.has(e.duid) && Date.parse(e.receivedAt) >= t0);
    const events = journaled.map((e) => Date.parse(e.receivedAt));
    // seenAt: when dnsmasq ran the hook (the hook's clock: the same host).
    const seen = journaled.map((e) => Date.parse(e.seenAt));
    let unreachable = 0;
    const noAddress = ready.filter((c) => !c.instance?.address).length;
    // Each container from its own device: isolation lets no one else reach it.
    const deviceOf = new Map(lab.devices.map((d) => [iaidOf(d.mac), d]));
    await pool(ready.filter((c) => c.instance?.address), 8, async (c) => {
      const address = c.instance!.address.split('/')[0]!;
      if (!(await lab.ping(deviceOf.get(c.iaid)!, address))) unreachable++;
    });
    const last = perDevice.length ? Math.max(...perDevice) : Number.NaN;
    return {
      wallMs: ready.length === clients.length ? last : Number.NaN,
      perDevice,
      ready: ready.length,
      failed: mine.filter((c) => c.state === 'failed').map((c) => c.stateReason),
      unreachable,
      noAddress,
      eventSpreadMs: events.length ? Math.max(...events) - Math.min(...events) : null,
      firstHookMs: seen.length ? Math.min(...seen) - t0 : null,
      lastHookMs: seen.length ? Math.max(...seen) - t0 : null,
      hookToReceived: journaled.map((e) => Date.parse(e.receivedAt) - Date.parse(e.seenAt)),
      firstEventToAllReadyMs: events.length && Number.isFinite(last) ? t0 + last - Math.min(...events) : null,
    };
  } finally {
    await pool(clients, 8, (c) => c.release());
    // Everything gone before the next measurement.
    const until = Date.now() + 120_000;
    while (Date.now() < until) {
      const all = (await api.get<{ clients: ListedClient[] }>('/v1/clients')).clients;
      if (!all.some((c) => iaids.has(c.iaid) && c.state !== 'gone' && c.state !== 'failed')) break;
      await sleep(200);
    }
  }
}

/**
 * `burst`: every lab device leases at once through the real dnsmasq (and so
 * through its hook, which dnsmasq runs one call at a time); the figure is
 * the time from the first dhclient spawn to the last client's `ready`
 * (orchestrator clock). Floor: floor-worker makes as many containers at the
 * orchestrator's `[instances] concurrency` (create+start+inspect+attach), wall
 * time. Rounds alternate product and floor.
 */
export async function measureBurst(lab: Lab, api: OrchestratorApi, floor: Floor, rounds: number): Promise<Figure[]> {
  const n = lab.devices.length;
  const concurrency = instanceConcurrency(lab);
  const product: Round[] = [];
  const floors: FloorBurst[] = [];
  for (let r = 0; r < rounds; r++) {
    product.push(await productRound(lab, api, 60_000 + n * 2_000));
    floors.push(await floor.burst(n, concurrency));
  }
  const wall = summarize(product.map((p) => p.wallMs));
  const floorWall = summarize(floors.map((f) => f.wallMs));
  const lost = product.reduce((a, p) => a + (n - p.ready), 0);
  const failed = product.flatMap((p) => p.failed);
  const quota = failed.filter((reason) => reason.startsWith('quota:')).length;
  const unreachable = product.reduce((a, p) => a + p.unreachable, 0);
  const noAddress = product.reduce((a, p) => a + p.noAddress, 0);
  const spread = summarize(product.map((p) => p.eventSpreadMs ?? Number.NaN));
  const fromFirst = summarize(product.map((p) => p.firstEventToAllReadyMs ?? Number.NaN));
  const perDevice = summarize(product.flatMap((p) => p.perDevice));
  const firstHook = summarize(product.map((p) => p.firstHookMs ?? Number.NaN));
  const lastHook = summarize(product.map((p) => p.lastHookMs ?? Number.NaN));
  const hookToReceived = summarize(product.flatMap((p) => p.hookToReceived));
  const notes = [
    `${n} devices x ${rounds} round(s), orchestrator concurrency ${concurrency}; per device (dhclient start -> ready) p50 ${perDevice.p50}, p95 ${perDevice.p95} ms`,
    `dnsmasq ran the hook for the first add ${firstHook.p50} ms and the last ${lastHook.p50} ms after the dhclients started; hook call -> journaled p50 ${hookToReceived.p50}, p95 ${hookToReceived.p95} ms; events received over ${spread.p50} ms; first event received -> all ready ${fromFirst.p50} ms`,
    `floor per container at concurrency ${concurrency}: p50 ${summarize(floors.flatMap((f) => f.containers.map((c) => c.totalMs))).p50} ms`,
  ];
  if (lost > 0) notes.push(`${lost} device(s) not ready in time${quota ? `, ${quota} refused by a quota (${failed.find((r) => r.startsWith('quota:'))})` : ''}${failed.length > quota ? `, e.g. ${failed.find((r) => !r.startsWith('quota:'))}` : ''}`);
  if (noAddress > 0) notes.push(`${noAddress} ready client(s) with an empty instance address (not pinged): ${EMPTY_ADDRESS_WHY}`);
  if (unreachable > 0) notes.push(`${unreachable} ready container(s) did not answer ping6`);
  return [
    figure({
      name: 'burst',
      metric: `${n} devices ms`,
      value: wall.p50,
      floor: floorWall.p50,
      target: '<= 1.3x floor, none lost',
      pass: lost === 0 && unreachable === 0 && noAddress === 0 && wall.p50 <= 1.3 * floorWall.p50,
      detail: { n, rounds, concurrency, wall, floorWall, perDevice, lost, quotaRefused: quota, unreachable, emptyInstanceAddress: noAddress, receivedSpreadMs: spread, firstHookMs: firstHook, lastHookMs: lastHook, hookToReceived, firstEventToAllReadyMs: fromFirst },
      notes,
    }),
  ];
}
