import { banTargetText, type EventOutcomeKind, type PoolStatus, compareText } from '@unionize/protocol';
import type { BanRecord } from '../store/types.js';
import type { Clock } from '../clock.js';
import type { AgentHealthSource } from '../metrics/agent-health.js';
import type { ChartSeries } from '../series/sampler.js';
import type { Store } from '../store/store.js';

/** What the dashboard shows, as one JSON object sent whole on every change. */
export interface DashboardState {
  generatedAt: string;
  counts: Record<string, number>;
  queued: number;
  devices: Array<{
    id: string;
    hostname: string | null;
    address: string;
    duid: string;
    mac: string | null;
    state: string;
    stateReason: string;
    container: string | null;
    containerAddress: string | null;
    agent: string | null;
    lastSeen: string;
    expiresAt: string | null;
  }>;
  /** `pools`: each warm pool as the agent last answered (ready of size, claims, misses); empty when it keeps none. */
  agents: Array<{ name: string; healthy: boolean | null; checkedAt: string | null; instances: number; pools: Array<{ name: string; size: number; ready: number; claims: number; misses: number }> }>;
  /** Banned devices (bans/bans.ts), by MAC or DUID. */
  bans: Array<{ target: string; kind: string; until: string | null }>;
  /** Containers kept as images when their lease ended (profiles' keep), newest first, at most KEPT_SHOWN. */
  kept: Array<{ clientId: string; hostname: string; profile: string; agent: string; sizeBytes: number; createdAt: string; expiresAt: string | null }>;
  events: Array<{ receivedAt: string; action: string; outcome: string | null; outcomeKind: EventOutcomeKind | null; address: string; hostname: string | null; clientId: string }>;
  /** The charts' last hour, per minute (series/sampler.ts: chartSeriesSchema). */
  series: ChartSeries;
  /** Of a pair: this orchestrator, which leads (a standby serves no dashboard), and its epoch; null alone. */
  leader: { name: string; epoch: number } | null;
}

export interface SnapshotSources {
  store: Store;
  agentHealth: AgentHealthSource;
  clock: Clock;
  queueDepth: () => number;
  /** The SeriesSampler's last hour. */
  series: () => Promise<ChartSeries>;
  /** The bans in force (Bans.list); none when absent. */
  bans?: () => BanRecord[];
  /** Agents' warm pools (pools/pool-sync.ts); none when absent. */
  pools?: (agent: string) => PoolStatus[] | null;
  /** Of a pair: this orchestrator's name and epoch while it leads (leadership/). */
  leader?: () => { name: string; epoch: number } | null;
}

/** Clients gone longer ago than this drop off the device list. */
const GONE_SHOWN_MS = 10 * 60_000;
const EVENTS_SHOWN = 30;
const KEPT_SHOWN = 20;

export async function dashboardState(sources: SnapshotSources): Promise<DashboardState> {
  const { store } = sources;
  const now = sources.clock.now().getTime();
  // Retired clients only from the last GONE_SHOWN_MS: reading each costs more than a live one (the memory store packs them).
  const clients = await store.listClients({ retired: { since: new Date(now - GONE_SHOWN_MS).toISOString() } });
  const counts: Record<string, number> = await store.clientsPerState();
  const instances = await store.listInstances();
  const hostnames = new Map(clients.map((c) => [c.id, c.hostname]));
  const instanceOf = new Map(instances.map((i) => [i.clientId, i]));
  const devices = clients
    .filter((c) => c.state !== 'gone' || now - Date.parse(c.updatedAt) < GONE_SHOWN_MS)
    .map((c) => {
      const instance = instanceOf.get(c.id);
      return {
        id: c.id,
        hostname: c.hostname,
        address: c.address,
        duid: c.duid,
        mac: c.mac,
        state: c.state,
        stateReason: c.stateReason,
        container: instance?.containerName ?? null,
        containerAddress: instance ? instance.address.split('/')[0]! : null,
        agent: instance?.agent ?? null,
        lastSeen: c.lastSeen,
        expiresAt: c.expiresAt,
      };
    })
    .sort((a, b) => compareText(a.hostname ?? '~', b.hostname ?? '~') || compareText(a.address, b.address));
  const agents = sources.agentHealth.list().map((a) => ({
    name: a.name,
    healthy: a.healthy,
    checkedAt: a.checkedAt,
    instances: instances.filter((i) => i.agent === a.name).length,
    pools: (sources.pools?.(a.name) ?? []).map((p) => ({ name: p.name, size: p.size, ready: p.ready, claims: p.claims, misses: p.misses })),
  }));
  // A retired client's hostname from the store: it is not among the clients listed above.
  const hostnameOf = async (id: string): Promise<string | null> => (hostnames.has(id) ? hostnames.get(id)! : (await store.getClient(id))?.hostname ?? null);
  const events = await Promise.all((await store.recentEvents(EVENTS_SHOWN)).map(async (e) => ({
    receivedAt: e.receivedAt,
    action: e.event.action,
    outcome: e.outcome,
    outcomeKind: e.outcomeKind,
    address: e.event.address,
    hostname: e.event.hostname ?? (await hostnameOf(e.clientId)),
    clientId: e.clientId,
  })));
  const bans = (sources.bans?.() ?? []).map((b) => ({ target: banTargetText(b), kind: b.kind, until: b.until }));
  const kept = (await store.listKept()).slice(-KEPT_SHOWN).reverse().map((k) => ({
    clientId: k.clientId, hostname: k.hostname, profile: k.profile, agent: k.agent, sizeBytes: k.sizeBytes, createdAt: k.createdAt, expiresAt: k.expiresAt,
  }));
  return { generatedAt: new Date(now).toISOString(), counts, queued: sources.queueDepth(), devices, agents, bans, kept, events, series: await sources.series(), leader: sources.leader?.() ?? null };
}

/**
 * One timer for all viewers: every `intervalMs` while anyone watches, build
 * the state and send it to each viewer if it changed (generatedAt aside).
 * Polling the store keeps the life cycle free of dashboard hooks; at a few
 * hundred clients a pass costs well under a millisecond.
 */
export class StateHub {
  readonly #build: () => Promise<DashboardState>;
  readonly #intervalMs: number;
  readonly #viewers = new Set<(json: string) => void>();
  #last = '';
  #lastJson = '';
  #timer: NodeJS.Timeout | undefined;
  /** A tick that finds the last one still building skips. */
  #building = false;

  constructor(build: () => Promise<DashboardState>, intervalMs: number) {
    this.#build = build;
    this.#intervalMs = intervalMs;
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  /** Sends the current state at once, then every change; resolves to the unsubscribe. */
  async subscribe(send: (json: string) => void): Promise<() => void> {
    await this.#refresh();
    send(this.#lastJson);
    this.#viewers.add(send);
    this.#timer ??= setInterval(() => void this.#tick(), this.#intervalMs).unref();
    return () => {
      this.#viewers.delete(send);
      if (this.#viewers.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  async #refresh(): Promise<boolean> {
    const state = await this.#build();
    const key = JSON.stringify({ ...state, generatedAt: '' });
    if (key === this.#last) return false;
    this.#last = key;
    this.#lastJson = JSON.stringify(state);
    return true;
  }

  async #tick(): Promise<void> {
    if (this.#building) return;
    this.#building = true;
    try {
      if (!(await this.#refresh())) return;
    } catch {
      return; // the store failed this once: the next tick tries again
    } finally {
      this.#building = false;
    }
    for (const send of this.#viewers) send(this.#lastJson);
  }
}
