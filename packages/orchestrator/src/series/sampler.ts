import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';

/** How far back the charts look, in one-minute steps. */
export const SERIES_MINUTES = 60;
const MINUTE_MS = 60_000;
/** Lease→ready times kept per minute; beyond it a uniform sample of this many (reservoir), so a flood costs no more memory. */
const LATENCIES_PER_MINUTE = 4096;

/**
 * The dashboard's charts, one value per minute, oldest first; every array
 * has SERIES_MINUTES entries and the last is the current, partial minute.
 * null where nothing is known (before the orchestrator started, or a minute
 * in which no client became ready).
 */
export const chartSeriesSchema = z
  .object({
    /** Start of each minute, Unix seconds (what uPlot's time axis takes). */
    t: z.array(z.number().int()),
    /** Clients not gone, as last sampled in the minute. */
    devices: z.array(z.number().int().nonnegative().nullable()),
    /** Containers recorded, as last sampled in the minute. */
    containers: z.array(z.number().int().nonnegative().nullable()),
    /** From the hook seeing a new lease to its client being ready, in seconds, over the clients that became ready in the minute. */
    leaseToReady: z
      .object({
        p50: z.array(z.number().nonnegative().nullable()),
        p95: z.array(z.number().nonnegative().nullable()),
        count: z.array(z.number().int().nonnegative()),
      })
      .strict(),
  })
  .strict();
export type ChartSeries = z.infer<typeof chartSeriesSchema>;

export interface SamplerOptions {
  clock: Clock;
  /** Read on every sample; cheap (the store counts by index). */
  counts: { devices(): Promise<number>; containers(): Promise<number> };
  /** For the reservoir past LATENCIES_PER_MINUTE; tests hand in their own. */
  random?: () => number;
  latenciesPerMinute?: number;
}

interface Minute {
  minute: number;
  devices: number | null;
  containers: number | null;
  latencies: number[];
  /** Latencies observed in the minute, kept or not. */
  observed: number;
  /** p50/p95 of `latencies` (null until asked, and after each new one); all that is kept of a past minute once asked. */
  summary: { p50: number; p95: number } | null;
}

/** Devices (clients not gone) and containers, from the store's indexed counts. */
export function storeCounts(store: Store): SamplerOptions['counts'] {
  return {
    devices: async () => {
      const perState = await store.clientsPerState();
      return Object.values(perState).reduce((a, b) => a + b, 0) - perState.gone;
    },
    containers: () => store.countInstances(),
  };
}

/** Nearest rank: the smallest value with at least p of the values at or below it. */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

/**
 * The last hour of the orchestrator's own numbers, for the dashboard's
 * charts: a ring of SERIES_MINUTES one-minute slots, each with the device and
 * container counts last sampled in it and the lease→ready times observed in
 * it. Memory is bounded: 60 slots of at most LATENCIES_PER_MINUTE numbers.
 * Nothing survives a restart; Prometheus (/metrics) is the long-term record.
 */
export class SeriesSampler {
  readonly #clock: Clock;
  readonly #counts: SamplerOptions['counts'];
  readonly #random: () => number;
  readonly #cap: number;
  readonly #ring: Array<Minute | undefined> = new Array(SERIES_MINUTES).fill(undefined);
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SamplerOptions) {
    this.#clock = options.clock;
    this.#counts = options.counts;
    this.#random = options.random ?? Math.random;
    this.#cap = options.latenciesPerMinute ?? LATENCIES_PER_MINUTE;
    if (!Number.isInteger(this.#cap) || this.#cap < 1) throw new RangeError(`latenciesPerMinute must be a whole number of at least 1, not ${this.#cap}`);
  }

  /** Samples now and every `intervalMs` (so a minute nobody watched is on the chart too); the timer keeps no process alive. */
  start(intervalMs: number): void {
    this.stop();
    // A sample the store failed leaves that minute's counts as they were.
    const sample = (): void => void this.sample().catch(() => undefined);
    sample();
    this.#timer = setInterval(sample, intervalMs).unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Records the device and container counts as the current minute's. */
  async sample(): Promise<void> {
    const slot = this.#current();
    if (!slot) return;
    const [devices, containers] = await Promise.all([this.#counts.devices(), this.#counts.containers()]);
    slot.devices = devices;
    slot.containers = containers;
  }

  /** One client became ready `seconds` after the hook saw its lease. */
  observeLeaseToReady(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    const slot = this.#current();
    if (!slot) return;
    slot.observed += 1;
    if (slot.latencies.length < this.#cap) slot.latencies.push(seconds);
    else {
      // Algorithm R: each of the `observed` values stays with probability cap/observed.
      const j = Math.floor(this.#random() * slot.observed);
      if (j < this.#cap) slot.latencies[j] = seconds;
      else return;
    }
    slot.summary = null;
  }

  /** The last SERIES_MINUTES minutes, sampled now for the current one. */
  async series(): Promise<ChartSeries> {
    await this.sample();
    const now = this.#minuteOf();
    const out: ChartSeries = { t: [], devices: [], containers: [], leaseToReady: { p50: [], p95: [], count: [] } };
    for (let minute = now - SERIES_MINUTES + 1; minute <= now; minute += 1) {
      const slot = this.#ring[minute % SERIES_MINUTES];
      const known = slot?.minute === minute ? slot : undefined;
      const summary = known ? this.#summary(known, now) : null;
      out.t.push((minute * MINUTE_MS) / 1000);
      out.devices.push(known?.devices ?? null);
      out.containers.push(known?.containers ?? null);
      out.leaseToReady.p50.push(summary?.p50 ?? null);
      out.leaseToReady.p95.push(summary?.p95 ?? null);
      out.leaseToReady.count.push(known?.observed ?? 0);
    }
    return out;
  }

  #minuteOf(): number {
    return Math.floor(this.#clock.now().getTime() / MINUTE_MS);
  }

  /** The current minute's slot, reusing the one of an hour ago; undefined if the clock went back past a newer slot. */
  #current(): Minute | undefined {
    const minute = this.#minuteOf();
    const index = minute % SERIES_MINUTES;
    const slot = this.#ring[index];
    if (slot && slot.minute === minute) return slot;
    if (slot && slot.minute > minute) return undefined;
    const fresh: Minute = { minute, devices: null, containers: null, latencies: [], observed: 0, summary: null };
    this.#ring[index] = fresh;
    return fresh;
  }

  #summary(slot: Minute, currentMinute: number): { p50: number; p95: number } | null {
    if (!slot.summary && slot.latencies.length > 0) {
      const sorted = [...slot.latencies].sort((a, b) => a - b);
      slot.summary = { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95) };
    }
    // A past minute takes no more observations: its summary is all it needs.
    if (slot.minute < currentMinute) slot.latencies = [];
    return slot.summary;
  }
}
