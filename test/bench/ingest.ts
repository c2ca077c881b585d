import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Lab } from '../lab/lab.js';
import { sleep } from '../lab/process.js';
import { OrchestratorApi } from '../support/orchestrator-api.js';
import { LAB_SERVER, leaseEvent, syntheticDevice } from './events.js';
import { cpuMsOf, selfCpuMs } from './proc.js';
import { ScaleRig, type RigPostgres } from './scale-rig.js';
import { SITE_CONFIG, siteSql } from './site-config.js';
import { figure, summarize, type Figure } from './stats.js';

/** What a site relies on (issue 13): signed lease events answered 202 a second, with the store the example config gives. */
export const INGEST_TARGET_PER_SECOND = 3000;

export const INGEST_CONCURRENCY = 32;
/** PostgreSQL's ingest against SQLite's in the same run (issue 19): at least this share. */
export const POSTGRES_INGEST_SHARE = 0.5;
/**
 * Load of each kind sent before the windows, not counted. V8 compiles the
 * event path (body, HMAC, zod, journal, queue) over its first seconds: on this
 * machine a first 2 s of events ran at half the rate of the next ones, and
 * healthz's far smaller path warms almost at once, so cold windows measured
 * the JIT more than the orchestrator.
 */
export const INGEST_WARMUP_SECONDS = 2;

export interface LoadResult {
  perSecond: number;
  ok: number;
  statuses: Record<string, number>;
  latency: ReturnType<typeof summarize>;
  /** CPU used meanwhile, as a share of one core: the server's and the load generator's (this process). */
  serverCpu: number;
  clientCpu: number;
}

/**
 * `concurrency` request loops on one keep-alive pool (the tests' SignedClient) for `seconds`.
 * The requests that finish inside the window count; 2xx only in `perSecond`.
 */
export async function load(
  make: () => { method: string; path: string; body?: string; sign: boolean },
  options: { api: OrchestratorApi; seconds: number; concurrency: number; serverPid?: number | undefined; okStatus: number },
): Promise<LoadResult> {
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  let ok = 0;
  const t0 = performance.now();
  const end = t0 + options.seconds * 1000;
  const cpu0 = { server: cpuMsOf(options.serverPid), client: selfCpuMs() };
  const loop = async () => {
    while (performance.now() < end) {
      const request = make();
      const started = performance.now();
      let status: string;
      try {
        status = String((await options.api.call(request.method, request.path, { ...(request.body ? { body: request.body } : {}), sign: request.sign })).status);
      } catch (error) {
        status = (error as Error).message.slice(0, 60);
      }
      const done = performance.now();
      if (done > end) break;
      statuses[status] = (statuses[status] ?? 0) + 1;
      latencies.push(done - started);
      if (status === String(options.okStatus)) ok++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  const wall = options.seconds * 1000;
  return {
    perSecond: Math.round(ok / Math.min(elapsed, options.seconds)),
    ok,
    statuses,
    latency: summarize(latencies),
    serverCpu: Math.round(((cpuMsOf(options.serverPid) - cpu0.server) / wall) * 100) / 100,
    clientCpu: Math.round(((selfCpuMs() - cpu0.client) / wall) * 100) / 100,
  };
}

/**
 * Bodies of `del` events for devices nobody has, one per call. The hook's own
 * parser (leaseEvent) makes the first; the others are it with a new eventId
 * and the next device of a counter. Making each through the parser (zod,
 * dnsmasq's environment, random MACs) cost the generator more than sending
 * the request, on the machine it shares with the server it measures.
 * Device k: DUID-LL of MAC 02:RR:kkkkkkkk (RR random for the run), IAID k,
 * address P:1::be:K:K, which no synthetic device (P:1::X:Y) or lease
 * (P:1::1000-1fff) has.
 */
export function delEvents(lab: Pick<Lab, 'prefix'>): () => string {
  const template = leaseEvent('del', syntheticDevice(lab), LAB_SERVER);
  const run = randomBytes(1).toString('hex');
  let k = 0;
  return () => {
    k = (k + 1) >>> 0;
    const hex = k.toString(16).padStart(8, '0');
    const mac = `02:${run}:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6)}`;
    return JSON.stringify({
      ...template,
      eventId: randomUUID(),
      duid: `00:03:00:01:${mac}`,
      iaid: String(k),
      address: `${lab.prefix}:1::be:${(k >>> 16).toString(16)}:${(k & 0xffff).toString(16)}`,
      hostname: `bench-ingest-${k}`,
      mac,
      seenAt: new Date().toISOString(),
    });
  };
}

/** Wait until the orchestrator's apply queue is empty; ms it took. */
async function drain(api: OrchestratorApi, timeoutMs = 120_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const { json } = await api.call('GET', '/readyz', { sign: false });
    if ((json as { queued?: number } | null)?.queued === 0) return Date.now() - t0;
    await sleep(50);
  }
  return Number.NaN;
}

/**
 * `ingest`: signed lease events a second that the orchestrator answers 202
 * (journaled; applied later by its queue), with the store config/orchestrator.ini
 * configures (its [sql] section as it is, the file in the lab directory, on
 * the same disk as /var/lib): a second real orchestrator daemon (ScaleRig,
 * as the lab runs it: its unit's node options, unprivileged, in the
 * orchestrator namespace), so that the lab's own keeps its store. Beside it,
 * GET /healthz on the same server through the same client and concurrency:
 * context (what the TLS and HTTP layers cost), not a target. From the root
 * namespace over the lab's management link. The events are `del`s for DUIDs
 * nobody has: each is journaled and applied ("ignored: release for an unknown
 * client") without a container; an `add` would provision one each.
 */
export async function measureIngest(lab: Lab, seconds: number, rounds: number, against?: { postgres: RigPostgres; sqliteRate: number | undefined }): Promise<Figure[]> {
  const rig = await ScaleRig.create(lab, against ? 'postgres' : 'site', against?.postgres);
  const sql = siteSql('(the lab directory)');
  const store = against ? 'PostgreSQL' : sql.enabled ? 'SQLite' : 'memory';
  const health: LoadResult[] = [];
  const events: LoadResult[] = [];
  const drains: number[] = [];
  let api: OrchestratorApi | undefined;
  try {
    await rig.start();
    api = new OrchestratorApi({ url: rig.url, caFile: lab.caFile, keysDir: lab.keysDir, connections: INGEST_CONCURRENCY });
    const common = { api, seconds, concurrency: INGEST_CONCURRENCY, serverPid: rig.pid };
    const nextEvent = delEvents(lab);
    const healthz = () => ({ method: 'GET', path: '/healthz', sign: false });
    const event = () => ({ method: 'POST', path: '/v1/lease-events', body: nextEvent(), sign: true });
    // Warm the pool's connections (TLS handshakes) and both paths' code outside the windows.
    const warm = api;
    await Promise.all(Array.from({ length: INGEST_CONCURRENCY }, () => warm.call('GET', '/healthz', { sign: false })));
    await load(healthz, { ...common, seconds: INGEST_WARMUP_SECONDS, okStatus: 200 });
    await load(event, { ...common, seconds: INGEST_WARMUP_SECONDS, okStatus: 202 });
    await drain(api);
    for (let r = 0; r < rounds; r++) {
      health.push(await load(healthz, { ...common, okStatus: 200 }));
      events.push(await load(event, { ...common, okStatus: 202 }));
      drains.push(await drain(api));
    }
  } finally {
    await api?.close();
    await rig.close();
  }
  const rate = summarize(events.map((e) => e.perSecond)).p50;
  const floor = summarize(health.map((h) => h.perSecond)).p50;
  const errors = events.flatMap((e) => Object.entries(e.statuses).filter(([s]) => s !== '202'));
  const last = events[events.length - 1]!;
  const lastHealth = health[health.length - 1]!;
  const settings = Object.entries(sql.settings).map(([k, v]) => `${k} = ${v}`).join(', ');
  // PostgreSQL's target: half of SQLite's rate measured in the same run (issue 19).
  const wanted = against ? (against.sqliteRate ?? Number.NaN) * POSTGRES_INGEST_SHARE : INGEST_TARGET_PER_SECOND;
  return [
    figure({
      name: 'ingest',
      metric: `events/s (${store})`,
      value: rate,
      floor,
      target: against ? `>= ${POSTGRES_INGEST_SHARE}x SQLite (${Math.round(wanted)}/s)` : `>= ${INGEST_TARGET_PER_SECOND}/s`,
      pass: errors.length === 0 && rate >= wanted,
      detail: { store, ...(against ? { sqliteRate: against.sqliteRate, share: against.sqliteRate ? Math.round((rate / against.sqliteRate) * 100) / 100 : null } : { sql: sql.settings }), events, health, drainMs: drains, concurrency: INGEST_CONCURRENCY, seconds, rounds },
      notes: [
        against
          ? `store: PostgreSQL ${against.postgres.server.version} on a Unix socket (a throwaway cluster the bench made, synchronous_commit on), one orchestrator leading alone; ${against.sqliteRate ? `${Math.round((rate / against.sqliteRate) * 100) / 100}x the SQLite figure of this run` : 'no SQLite figure in this run'}; floor and ratio: GET /healthz on the same server, context only`
          : `store as ${SITE_CONFIG} configures it: [sql] ${settings || '(none set)'} (path moved into the lab directory, same disk); floor and ratio: GET /healthz on the same server, context only`,
        `${rounds} x ${seconds} s each after ${INGEST_WARMUP_SECONDS} s of each not counted, concurrency ${INGEST_CONCURRENCY}, keep-alive TLS; events: del for unknown DUIDs (journaled, applied as ignored, no container)`,
        `CPU (share of one core) events: server ${last.serverCpu}, load generator ${last.clientCpu}; healthz: server ${lastHealth.serverCpu}, generator ${lastHealth.clientCpu}`,
        `latency p50 events ${last.latency.p50} ms, healthz ${lastHealth.latency.p50} ms; apply queue drained ${summarize(drains).p50} ms after the load`,
        ...(errors.length ? [`non-202 answers: ${JSON.stringify(Object.fromEntries(errors))}`] : []),
      ],
    }),
  ];
}
