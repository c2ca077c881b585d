import type { Lab } from '../lab/lab.js';
import { rssOf } from './proc.js';
import { ScaleRig, type RigPostgres } from './scale-rig.js';
import { figure, ratio, summarize, type Figure, type Summary } from './stats.js';

export type Seeding = 'adopt' | 'events';

interface AtSize {
  clients: number;
  seed: { ms: number; perSecond: number };
  add: Summary;
  old: Summary;
  list: Summary;
  listBytes: number;
  rss: ReturnType<typeof rssOf>;
  busyRss: ReturnType<typeof rssOf>;
  trimMs: number | undefined;
  heap: Awaited<ReturnType<ScaleRig['heap']>>;
}

/** Grow the rig to `clients`, then measure. With `adopt`, the daemon is (re)started to adopt; the journal is then filled with as many events. */
async function atSize(rig: ScaleRig, clients: number, seeding: Seeding, runs: { apply: number; list: number }): Promise<AtSize> {
  let seed: { ms: number; perSecond: number };
  if (seeding === 'adopt') {
    await rig.stop();
    const todo = clients - rig.devices.length;
    rig.preload(clients);
    const started = await rig.start({ adopt: true });
    // What `add` events would have left besides the clients: a journal (capped by the store) and nonces.
    await rig.post('del', clients);
    seed = { ms: started.ms, perSecond: Math.round(todo / (started.ms / 1000)) };
  } else {
    seed = await rig.post('add', clients - rig.devices.length);
  }
  const add = summarize(await rig.applyLatency('add', runs.apply));
  const old = summarize(await rig.applyLatency('old', runs.apply));
  const list = await rig.listLatency(runs.list);
  if (list.clients < clients) throw new Error(`GET /v1/clients lists ${list.clients} clients, expected ${clients} or more`);
  return { clients: list.clients, seed, add, old, list: summarize(list.ms), listBytes: list.bytes, ...(await settledRss(rig)) };
}

/**
 * The daemon's RSS once its work stopped: right away (`busyRss`), then after
 * its memory trim ([memory] trim_idle_seconds after the last event applied),
 * which is what it holds from then on (`rss`); the trim's pause in ms.
 */
async function settledRss(rig: ScaleRig): Promise<{ rss: ReturnType<typeof rssOf>; busyRss: ReturnType<typeof rssOf>; trimMs: number | undefined; heap: Awaited<ReturnType<ScaleRig['heap']>> }> {
  const busyRss = rig.rss();
  const trimMs = await rig.waitForTrim(await rig.trims());
  return { busyRss, trimMs, rss: rig.rss(), heap: await rig.heap() };
}

/**
 * `scale` and the orchestrator's `rss`: a second real orchestrator daemon
 * with a fake agent (scale-rig.ts), grown to `small` then `large` clients; at
 * each size, the apply latency of a new client's `add` and of a known
 * client's `old`, the GET /v1/clients latency, and the daemon's VmRSS.
 */
export async function measureScale(
  lab: Lab,
  options: { small: number; large: number; applyRuns: number; listRuns: number; store: 'memory' | 'sqlite' | 'postgres'; seeding: Seeding; postgres?: RigPostgres },
): Promise<Figure[]> {
  if (options.seeding === 'adopt' && options.store !== 'memory') throw new Error('adopt seeding needs the memory store (a durable store removes unknown containers)');
  const rig = await ScaleRig.create(lab, options.store, options.postgres);
  let small: AtSize;
  let large: AtSize;
  let gone: { count: number; perSecond: number } & Awaited<ReturnType<typeof settledRss>>;
  const runs = { apply: options.applyRuns, list: options.listRuns };
  try {
    if (options.seeding === 'events') await rig.start();
    small = await atSize(rig, options.small, options.seeding, runs);
    large = await atSize(rig, options.large, options.seeding, runs);
    // As many again that came and went (issue 16: gone clients are kept for [retention] gone_days, then pruned).
    const posted = await rig.postGone(options.large);
    gone = { count: options.large, perSecond: posted.perSecond, ...(await settledRss(rig)) };
  } finally {
    await rig.close();
  }
  const tag = options.store === 'memory' ? '' : ` (${options.store})`;
  const how =
    options.seeding === 'adopt'
      ? `clients adopted at daemon start from the fake agent's labelled containers (the in-memory restart path), then as many del events journaled`
      : `clients made by signed add events (seeding ran at ${small.seed.perSecond} then ${large.seed.perSecond} clients/s)`;
  /**
   * `resolution`: apply times come from the journal's appliedAt - receivedAt,
   * whole milliseconds; a mean below one tick is counted as one for the ratio
   * (0 -> 0 is no growth, not an undefined ratio; 0.1 -> 0.3 is two ticks in
   * fifteen runs, not a threefold growth).
   */
  const growth = (what: string, metric: string, a: Summary, b: Summary, notes: string[] = [], resolution = 0) => {
    const growthRatio = ratio(Math.max(b.mean, resolution), Math.max(a.mean, resolution));
    return figure({
      name: `scale${tag}`,
      metric,
      value: b.mean,
      floor: a.mean,
      ratio: growthRatio,
      target: '<= 2x growth',
      pass: (growthRatio ?? Number.POSITIVE_INFINITY) <= 2,
      detail: { what, [`at${options.small}`]: a, [`at${options.large}`]: b, ...(resolution ? { resolutionMs: resolution } : {}) },
      notes,
    });
  };
  return [
    growth('apply add', `apply add mean ms @${options.large} vs @${options.small}`, small.add, large.add, [
      `real orchestrator daemon (its bundle, as its unit starts it; ${options.store} store, quotas off, reconcile hourly), fake agent in the bench (no containers); ${how}`,
      `apply = the daemon's appliedAt - receivedAt of one event sent alone (1 ms resolution: a mean below 1 ms counts as 1 ms in the ratio); add (new client, via the fake agent) p50 ${small.add.p50} -> ${large.add.p50} ms, old (renewal) p50 ${small.old.p50} -> ${large.old.p50} ms`,
    ], 1),
    growth('apply old', `apply old mean ms @${options.large} vs @${options.small}`, small.old, large.old, [], 1),
    growth('list', `GET /v1/clients page (100) mean ms @${options.large} vs @${options.small}`, small.list, large.list, [
      `one page: ${Math.round(small.listBytes / 1024)} KiB -> ${Math.round(large.listBytes / 1024)} KiB; the cursor is the middle of the rig's client ids, and the whole list (to count the clients) comes after the timed pages`,
    ]),
    figure({
      name: `rss${tag}`,
      metric: `orchestrator MB @${large.clients} clients`,
      value: large.rss?.rssMb ?? Number.NaN,
      floor: null,
      target: '<= 120 MB',
      pass: (large.rss?.rssMb ?? Number.POSITIVE_INFINITY) <= 120,
      detail: { small: { ...small.rss, heap: small.heap, beforeTrim: small.busyRss, trimMs: small.trimMs }, large: { ...large.rss, heap: large.heap, beforeTrim: large.busyRss, trimMs: large.trimMs }, clients: large.clients, seeding: options.seeding },
      notes: [
        `VmRSS of that daemon (${large.rss?.comm}) after the scale runs and its memory trim (${trimText(large)}); ${large.busyRss?.rssMb} MB right after the runs, before the trim; ${small.rss?.rssMb} MB at ${small.clients} clients; peak (VmHWM) ${large.rss?.hwmMb} MB; of the ${large.rss?.rssMb} MB, ${large.rss?.anonMb} anonymous and ${large.rss?.fileMb} file pages (node's binary)`,
        `its V8 heap (/metrics) at ${large.clients}: ${large.heap?.usedMb} MB used of ${large.heap?.totalMb} MB; at ${small.clients}: ${small.heap?.usedMb} of ${small.heap?.totalMb} MB`,
      ],
    }),
    figure({
      name: `rss${tag}`,
      metric: `orchestrator MB @${large.clients} clients + ${gone.count} gone`,
      value: gone.rss?.rssMb ?? Number.NaN,
      floor: null,
      target: '<= 120 MB',
      pass: (gone.rss?.rssMb ?? Number.POSITIVE_INFINITY) <= 120,
      detail: { ...gone.rss, heap: gone.heap, beforeTrim: gone.busyRss, trimMs: gone.trimMs, gone: gone.count, clientsPerSecond: gone.perSecond },
      notes: [
        `the same daemon after ${gone.count} more clients came (add) and went (del), kept until [retention] gone_days, and its memory trim (${trimText(gone)}); ${gone.busyRss?.rssMb} MB right after them, before the trim; ${large.rss?.rssMb} MB before them; V8 heap ${gone.heap?.usedMb} MB used of ${gone.heap?.totalMb} MB`,
      ],
    }),
  ];
}

function trimText(at: { trimMs: number | undefined }): string {
  return at.trimMs === undefined ? 'none came within 90 s' : `a ${at.trimMs} ms pause`;
}

/** unionize's RSS in the lab, idle: at start (before any work) and now (after the run, nothing in flight). */
export function unionizeRss(lab: Lab, atStart: ReturnType<typeof rssOf>): Figure {
  const now = rssOf(lab.daemons.unionize?.pid);
  const orchestrator = rssOf(lab.daemons.orchestrator?.pid);
  const value = Math.max(now?.rssMb ?? Number.NaN, atStart?.rssMb ?? Number.NaN);
  return figure({
    name: 'rss',
    metric: 'unionize idle MB',
    value,
    floor: null,
    target: '<= 80 MB',
    pass: value <= 80,
    detail: { atStart, afterRun: now, labOrchestrator: orchestrator },
    notes: [`lab unionize (${now?.comm}) VmRSS: ${atStart?.rssMb} MB idle after start, ${now?.rssMb} MB idle after the run (peak ${now?.hwmMb}); the larger is the figure. Lab orchestrator after the run: ${orchestrator?.rssMb} MB`],
  });
}
