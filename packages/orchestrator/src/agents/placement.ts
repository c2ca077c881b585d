import type { AgentClient } from './agent-client.js';
import type { InstanceRecord } from '../store/types.js';

/** Choose the agent for a new client: the one running the fewest instances (ties: config order). */
export function chooseAgent(agents: readonly AgentClient[], instances: readonly InstanceRecord[]): AgentClient | undefined {
  const load = new Map<string, number>(agents.map((a) => [a.name, 0]));
  for (const instance of instances) load.set(instance.agent, (load.get(instance.agent) ?? 0) + 1);
  let best: AgentClient | undefined;
  for (const agent of agents) {
    if (!best || load.get(agent.name)! < load.get(best.name)!) best = agent;
  }
  return best;
}
