import type { Logger } from 'pino';
import type { AgentClient } from '../agents/agent-client.js';
import type { Clock } from '../clock.js';

export interface AgentHealthView {
  name: string;
  /** null until the first check answered. */
  healthy: boolean | null;
  checkedAt: string | null;
  /** How long the last check took, ms (null when not measured). */
  latencyMs: number | null;
}

/** What /metrics, /v1/agents and the dashboard read: the agents' last health checks. */
export interface AgentHealthSource {
  list(): AgentHealthView[];
}

/**
 * The placement's AgentMonitor (agents/agent-monitor.ts) as a health source,
 * so the dashboard and metrics say what placement decides on (one poller).
 */
export function agentHealthFrom(monitor: { list(): Array<{ name: string; health: string; checkedAt: string | null }> }): AgentHealthSource {
  return {
    list: () =>
      monitor.list().map((s) => ({ name: s.name, healthy: s.checkedAt ? s.health === 'healthy' : null, checkedAt: s.checkedAt, latencyMs: null })),
  };
}

/**
 * Asks every agent's /healthz (signed) every `intervalMs` and remembers the
 * answer, for /metrics, /v1/agents and the dashboard: reading health never
 * waits on an agent.
 */
export class AgentHealth implements AgentHealthSource {
  readonly #agents: readonly AgentClient[];
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #state = new Map<string, AgentHealthView>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { agents: readonly AgentClient[]; clock: Clock; log: Logger }) {
    this.#agents = options.agents;
    this.#clock = options.clock;
    this.#log = options.log;
    for (const agent of this.#agents) this.#state.set(agent.name, { name: agent.name, healthy: null, checkedAt: null, latencyMs: null });
  }

  /** Check every agent once, in parallel. */
  async checkAll(): Promise<void> {
    await Promise.all(
      this.#agents.map(async (agent) => {
        const started = performance.now();
        const healthy = await agent.health().catch(() => false);
        const previous = this.#state.get(agent.name);
        if (previous?.healthy !== null && previous?.healthy !== healthy) {
          this.#log[healthy ? 'info' : 'warn']({ agent: agent.name, healthy }, healthy ? 'agent healthy again' : 'agent unhealthy');
        }
        this.#state.set(agent.name, {
          name: agent.name,
          healthy,
          checkedAt: this.#clock.now().toISOString(),
          latencyMs: Math.round(performance.now() - started),
        });
      }),
    );
  }

  start(intervalMs: number): void {
    const tick = () => {
      void this.checkAll().finally(() => {
        if (this.#timer) this.#timer = setTimeout(tick, intervalMs).unref();
      });
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  list(): AgentHealthView[] {
    return this.#agents.map((a) => this.#state.get(a.name)!);
  }
}
