import type { AgentClient } from './agent-client.js';

/**
 * Choose the agent for a new client: the least loaded among the candidates
 * (healthy, not draining) that still has room; ties go to config order.
 * `load(name)` is its containers (recorded and being made); `capacity(name)`
 * 0 means no limit.
 */
export function chooseAgent(
  candidates: readonly AgentClient[],
  load: (name: string) => number,
  capacity: (name: string) => number = () => 0,
): AgentClient | undefined {
  let best: AgentClient | undefined;
  let bestLoad = 0;
  for (const agent of candidates) {
    const n = load(agent.name);
    const limit = capacity(agent.name);
    if (limit > 0 && n >= limit) continue;
    if (!best || n < bestLoad) {
      best = agent;
      bestLoad = n;
    }
  }
  return best;
}
