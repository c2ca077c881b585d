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
export function agentHealthFrom(monitor: { list(): Array<{ name: string; health: string; checkedAt: string | null; latencyMs: number | null }> }): AgentHealthSource {
  return {
    list: () =>
      monitor.list().map((s) => ({ name: s.name, healthy: s.checkedAt ? s.health === 'healthy' : null, checkedAt: s.checkedAt, latencyMs: s.latencyMs })),
  };
}
