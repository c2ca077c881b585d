import type { PoolStatus } from '@unionize/protocol';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../store/store.js';
import { CLIENT_STATES } from '../store/types.js';
import type { AgentHealthSource } from './agent-health.js';

/**
 * The orchestrator's Prometheus metrics (prom-client, text format at
 * /metrics): the instruments the work sets (createMetrics; observer.ts sets
 * them from the life cycle and the dispatcher, the API from requests), and
 * gauges that mirror the state, computed when scraped (observeState), so they
 * are never stale and cost nothing between scrapes; they read the store's
 * counts, not every client.
 */
export interface OrchestratorMetrics {
  readonly registry: Registry;
  /** Lease events applied, by action and outcome kind (EVENT_OUTCOME_KINDS: the kind, never the reason). */
  readonly events: Counter<'action' | 'outcome'>;
  /** Lease events received, by server and action (before they are applied). */
  readonly received: Counter<'server' | 'action' | 'duplicate'>;
  /** How long making a client's container took (agent call included), by result. */
  readonly provisionSeconds: Histogram<'result'>;
  /** From the hook seeing an `add` to the client being ready. */
  readonly leaseToReadySeconds: Histogram;
  /** The hook's spool depth, as its last delivery said (`x-hook-spool-depth`). */
  readonly hookSpoolDepth: Gauge<'server'>;
  /** Events the hook set aside in rejected/, as its last delivery said (`x-hook-rejected`). */
  readonly hookRejected: Gauge<'server'>;
  readonly requests: Counter<'method' | 'route' | 'status'>;
  /** Memory trims after activity stopped (memory/idle-trim.ts), with the pause each cost. */
  readonly memoryTrimSeconds: Histogram;
}

/** What the state gauges read when scraped. */
export interface StateSources {
  store: Store;
  agentHealth: AgentHealthSource;
  queueDepth: () => number;
  /** Agents' warm pools as they last answered (pools/pool-sync.ts); none when absent. */
  pools?: (agent: string) => PoolStatus[] | null;
}

/** The state gauges, added to the registry once what they read exists. */
export function observeState(metrics: OrchestratorMetrics, sources: StateSources): void {
  const registers = [metrics.registry];

  new Gauge({
    name: 'orchestrator_clients',
    help: 'Clients by life-cycle state',
    labelNames: ['state'],
    registers,
    async collect() {
      const counts = await sources.store.clientsPerState();
      for (const state of CLIENT_STATES) this.set({ state }, counts[state]);
    },
  });
  new Gauge({
    name: 'orchestrator_instances',
    help: 'Containers recorded, by agent',
    labelNames: ['agent'],
    registers,
    async collect() {
      const counts = await sources.store.instancesPerAgent();
      for (const agent of sources.agentHealth.list()) if (!counts.has(agent.name)) counts.set(agent.name, 0);
      for (const [agent, n] of counts) this.set({ agent }, n);
    },
  });
  new Gauge({
    name: 'orchestrator_agent_up',
    help: 'Whether the agent answered its last health check (1) or not (0); absent before the first check',
    labelNames: ['agent'],
    registers,
    collect() {
      this.reset();
      for (const agent of sources.agentHealth.list()) if (agent.healthy !== null) this.set({ agent: agent.name }, agent.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: 'orchestrator_agent_health_check_seconds',
    help: 'How long the last health check of the agent took',
    labelNames: ['agent'],
    registers,
    collect() {
      this.reset();
      for (const agent of sources.agentHealth.list()) if (agent.latencyMs !== null) this.set({ agent: agent.name }, agent.latencyMs / 1000);
    },
  });
  new Gauge({
    name: 'orchestrator_store_quarantined_rows',
    help: 'Store rows kept aside in the quarantine table because they could not be read (SQLite store; each is logged with its id)',
    registers,
    async collect() {
      this.set(await sources.store.quarantinedRows());
    },
  });
  new Gauge({
    name: 'orchestrator_agent_pool',
    help: "Agents' warm pools as each last answered: members wanted (size), ready, and since the agent started claims and misses (made cold); its own /metrics has unionize_pool_refill_seconds",
    labelNames: ['agent', 'pool', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const agent of sources.agentHealth.list()) {
        for (const p of sources.pools?.(agent.name) ?? []) {
          for (const kind of ['size', 'ready', 'claims', 'misses'] as const) this.set({ agent: agent.name, pool: p.name, kind }, p[kind]);
        }
      }
    },
  });
  new Gauge({
    name: 'orchestrator_event_queue_depth',
    help: 'Tasks (lease events, retries, repairs) queued or running',
    registers,
    collect() {
      this.set(sources.queueDepth());
    },
  });
}

/** The instruments; `defaultMetrics`: process metrics too (CPU, memory, event loop), off in unit tests. */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): OrchestratorMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'orchestrator_' });
  return {
    registry,
    events: new Counter({ name: 'orchestrator_lease_events_total', help: 'Lease events applied, by action and outcome', labelNames: ['action', 'outcome'], registers }),
    received: new Counter({
      name: 'orchestrator_lease_events_received_total',
      help: 'Lease events accepted (202), by DHCP server, action and whether the eventId was known already',
      labelNames: ['server', 'action', 'duplicate'],
      registers,
    }),
    provisionSeconds: new Histogram({
      name: 'orchestrator_provision_duration_seconds',
      help: "Time to make a client's container exist, run and be attached, by result (ok, failed, refused)",
      labelNames: ['result'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    }),
    leaseToReadySeconds: new Histogram({
      name: 'orchestrator_lease_to_ready_seconds',
      help: 'From the hook seeing a new lease to its client being ready',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers,
    }),
    hookSpoolDepth: new Gauge({
      name: 'orchestrator_hook_spool_depth',
      help: "Events waiting in the hook's spool, as reported with its last delivery (x-hook-spool-depth), by DHCP server",
      labelNames: ['server'],
      registers,
    }),
    hookRejected: new Gauge({
      name: 'orchestrator_hook_rejected_events',
      help: "Events the hook set aside in its spool's rejected/ (refused for good, or not a call), as reported with its last delivery (x-hook-rejected), by DHCP server",
      labelNames: ['server'],
      registers,
    }),
    requests: new Counter({
      name: 'orchestrator_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    memoryTrimSeconds: new Histogram({
      name: 'orchestrator_memory_trim_seconds',
      help: 'Last-resort collections run once lease events stopped ([memory] trim_idle_seconds), by the pause each cost',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
      registers,
    }),
  };
}
