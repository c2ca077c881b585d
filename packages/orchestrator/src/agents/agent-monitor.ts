import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Repeat } from '../repeat.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { AgentRecord } from '../store/types.js';
import type { AgentClient } from './agent-client.js';

export interface AgentSettings {
  name: string;
  url: string;
  /** Most containers placed on it; 0 for no limit. */
  capacity: number;
  /** Drained from config: no new clients. */
  drain: boolean;
}

export type AgentHealth = 'healthy' | 'unhealthy' | 'dead';

export interface AgentStatus extends AgentSettings {
  health: AgentHealth;
  draining: boolean;
  unhealthySince: string | null;
  checkedAt: string | null;
  /** How long its last health check took, ms; null before the first. */
  latencyMs: number | null;
}

/**
 * Health checks every agent and remembers, per agent, whether it is healthy,
 * unhealthy (failing, but not for long: its containers are left alone) or dead
 * (failing for `deadAfterMs`: its clients are provisioned elsewhere), and
 * whether it is draining.
 */
export class AgentMonitor {
  readonly #agents: ReadonlyMap<string, AgentClient>;
  readonly #settings: ReadonlyMap<string, AgentSettings>;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #deadAfterMs: number;
  readonly #records = new Map<string, AgentRecord>();
  /** The health last logged per agent: unhealthy turns dead by the clock alone, between two checks. */
  readonly #reported = new Map<string, AgentHealth>();
  /** How long each agent's last health check took, ms. */
  readonly #latencyMs = new Map<string, number>();
  // checkAll does not throw (each check records its own failure); a throw would be logged.
  readonly #repeat = new Repeat(() => this.checkAll(), (error) => this.#log.error({ err: error }, 'agent health checks failed'));

  /** A monitor that starts from the agents the store recorded. */
  static async open(options: { agents: readonly AgentClient[]; settings: readonly AgentSettings[]; store: Store; clock: Clock; log: Logger; deadAfterMs: number }): Promise<AgentMonitor> {
    return new AgentMonitor({ ...options, recorded: await options.store.listAgents() });
  }

  /** `recorded`: the agents the store holds (open() reads them). */
  constructor(options: { agents: readonly AgentClient[]; settings: readonly AgentSettings[]; store: Store; clock: Clock; log: Logger; deadAfterMs: number; recorded: readonly AgentRecord[] }) {
    this.#agents = new Map(options.agents.map((a) => [a.name, a]));
    this.#settings = new Map(options.settings.map((s) => [s.name, s]));
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#deadAfterMs = options.deadAfterMs;
    const known = new Map(options.recorded.map((a) => [a.name, a]));
    for (const s of options.settings) {
      const previous = known.get(s.name);
      // Until its first check an agent counts as healthy: start-up must not re-place every client.
      this.#records.set(s.name, {
        name: s.name,
        url: s.url,
        healthy: previous?.healthy ?? true,
        checkedAt: previous?.checkedAt ?? '',
        unhealthySince: previous?.unhealthySince ?? null,
        // The config decides at start: a drain lifted there is lifted (the store only remembers it for display).
        draining: s.drain,
      });
    }
  }

  start(intervalMs: number): void {
    this.#repeat.start(intervalMs);
  }

  stop(): void {
    this.#repeat.stop();
  }

  async checkAll(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((agent) => this.#check(agent)));
  }

  status(name: string): AgentStatus | undefined {
    const settings = this.#settings.get(name);
    const record = this.#records.get(name);
    if (!settings || !record) return undefined;
    return {
      ...settings,
      health: this.#health(record),
      draining: record.draining,
      unhealthySince: record.unhealthySince,
      checkedAt: record.checkedAt || null,
      latencyMs: this.#latencyMs.get(name) ?? null,
    };
  }

  list(): AgentStatus[] {
    return [...this.#settings.keys()].map((name) => this.status(name)!);
  }

  isDead(name: string): boolean {
    return this.status(name)?.health === 'dead';
  }

  /** Agents a new client may be placed on: healthy and not draining. */
  placeable(): AgentClient[] {
    return [...this.#agents.values()].filter((a) => {
      const status = this.status(a.name);
      return status?.health === 'healthy' && !status.draining;
    });
  }

  /** Drain (or not) at run time, until the next start, where the config's `drain` decides again. */
  async setDraining(name: string, draining: boolean): Promise<boolean> {
    const record = this.#records.get(name);
    if (!record) return false;
    record.draining = draining;
    await this.#store.putAgent({ ...record });
    this.#log.info({ agent: name, draining }, draining ? 'agent draining: no new clients' : 'agent accepts new clients');
    return true;
  }

  #health(record: AgentRecord): AgentHealth {
    if (record.healthy) return 'healthy';
    const since = record.unhealthySince ? Date.parse(record.unhealthySince) : Number.NaN;
    return Number.isFinite(since) && this.#clock.now().getTime() - since >= this.#deadAfterMs ? 'dead' : 'unhealthy';
  }

  async #check(agent: AgentClient): Promise<void> {
    const started = performance.now();
    const healthy = await agent.health();
    this.#latencyMs.set(agent.name, performance.now() - started);
    const record = this.#records.get(agent.name);
    if (!record) return;
    const now = this.#clock.now().toISOString();
    const before = this.#reported.get(agent.name) ?? this.#health(record);
    record.healthy = healthy;
    record.checkedAt = now;
    record.unhealthySince = healthy ? null : (record.unhealthySince ?? now);
    const after = this.#health(record);
    this.#reported.set(agent.name, after);
    if (before !== after) {
      const level = after === 'healthy' ? 'info' : 'warn';
      this.#log[level]({ agent: agent.name, from: before, to: after }, `agent ${agent.name} ${after}`);
    }
    await this.#store.putAgent({ ...record });
  }
}
