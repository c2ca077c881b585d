import type { PoolStatus } from '@unionize/protocol';
import type { Context } from 'hono';
import { matchedRoutes } from 'hono/route';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DockerClient } from '../docker/docker-client.js';
import type { Isolation } from '../isolation/isolation.js';

/**
 * unionize's Prometheus metrics: requests (so container create latency is
 * the histogram of POST /v1/containers), and, computed when scraped, whether
 * Docker answers and how many managed containers it has by state.
 */
export interface UnionizeMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly requestSeconds: Histogram<'method' | 'route'>;
  /** Warm pools (pool/warm-pool.ts): claims, misses (made cold), and each member's create and start. */
  readonly poolClaims: Counter<'pool'>;
  readonly poolMisses: Counter<'pool'>;
  readonly poolRefillSeconds: Histogram<'pool'>;
  /** Where the pool gauges read from, once there is a pool. */
  watchPools(status: () => PoolStatus[]): void;
}

/** WarmPoolOptions' hooks, counting into these metrics. */
export function poolMetricHooks(metrics: UnionizeMetrics): { onClaim: (pool: string) => void; onMiss: (pool: string) => void; onRefill: (pool: string, seconds: number) => void } {
  return {
    onClaim: (pool) => metrics.poolClaims.inc({ pool }),
    onMiss: (pool) => metrics.poolMisses.inc({ pool }),
    onRefill: (pool, seconds) => metrics.poolRefillSeconds.observe({ pool }, seconds),
  };
}

/** How long a scrape waits for Docker before calling it down. */
const DOCKER_SCRAPE_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

export function createMetrics(options: { docker: DockerClient; isolation?: Isolation; defaultMetrics?: boolean }): UnionizeMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'unionize_' });

  // One Docker round trip per scrape serves both gauges.
  let scrape: Promise<{ up: boolean; states: Map<string, number> }> | undefined;
  const dockerState = () => {
    scrape ??= withTimeout(options.docker.listManaged(), DOCKER_SCRAPE_TIMEOUT_MS)
      .then((containers) => {
        const states = new Map<string, number>([['running', 0]]);
        for (const c of containers) states.set(c.state, (states.get(c.state) ?? 0) + 1);
        return { up: true, states };
      })
      .catch(() => ({ up: false, states: new Map<string, number>() }))
      .finally(() => setTimeout(() => (scrape = undefined), 0));
    return scrape;
  };

  new Gauge({
    name: 'unionize_docker_up',
    help: 'Whether Docker answered when scraped (1) or not (0)',
    registers,
    async collect() {
      this.set((await dockerState()).up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'unionize_containers',
    help: 'Managed containers by Docker state (absent when Docker does not answer)',
    labelNames: ['state'],
    registers,
    async collect() {
      this.reset();
      for (const [state, n] of (await dockerState()).states) this.set({ state }, n);
    },
  });

  const isolation = options.isolation;
  if (isolation?.filtering) {
    new Gauge({
      name: 'unionize_isolation_pairs',
      help: 'Device and container address pairs the isolation filter lets talk ([isolation] mode = filter)',
      registers,
      collect() {
        this.set(isolation.pairCount());
      },
    });
    new Counter({
      name: 'unionize_isolation_write_failures_total',
      help: 'Times nft could not write the isolation table (the request that needed it failed; the next change writes it again)',
      registers,
      collect() {
        this.reset();
        this.inc(isolation.writeFailures);
      },
    });
  }

  let poolStatus: (() => PoolStatus[]) | undefined;
  new Gauge({
    name: 'unionize_pool_members',
    help: 'Warm pool members by pool: wanted (size), started and unclaimed (ready), being made (starting)',
    labelNames: ['pool', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const p of poolStatus?.() ?? []) {
        this.set({ pool: p.name, kind: 'size' }, p.size);
        this.set({ pool: p.name, kind: 'ready' }, p.ready);
        this.set({ pool: p.name, kind: 'starting' }, p.starting);
      }
    },
  });

  return {
    registry,
    poolClaims: new Counter({ name: 'unionize_pool_claims_total', help: 'Containers made by claiming a warm pool member, by pool', labelNames: ['pool'], registers }),
    poolMisses: new Counter({ name: 'unionize_pool_misses_total', help: 'Requests for a pool that found no member ready (or whose claim failed) and were made cold, by pool', labelNames: ['pool'], registers }),
    poolRefillSeconds: new Histogram({
      name: 'unionize_pool_refill_seconds',
      help: 'Time to make one pool member (create, start, inspect), by pool',
      labelNames: ['pool'],
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    }),
    watchPools: (status) => {
      poolStatus = status;
    },
    requests: new Counter({ name: 'unionize_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status', labelNames: ['method', 'route', 'status'], registers }),
    requestSeconds: new Histogram({
      name: 'unionize_http_request_duration_seconds',
      help: 'Time to answer, by method and route pattern (POST /v1/containers: create, start and attach)',
      labelNames: ['method', 'route'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    }),
  };
}

/** The route pattern that answered, never the raw path (a caller could make up paths without end). */
export function routeLabel(c: Context): string {
  return matchedRoutes(c).filter((r) => r.method !== 'ALL').at(-1)?.path ?? 'unmatched';
}
