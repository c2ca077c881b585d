import type { AgentClient } from './agent-client.js';
import type { InstanceRecord } from '../store/types.js';

/**
 * Choose the agent for a new client: the least loaded among the candidates
 * (healthy, not draining) that still has room; ties go to config order.
 * `capacity(name)` 0 means no limit.
 */
export function chooseAgent(
  candidates: readonly AgentClient[],
  /** Containers by agent: the recorded instances and those being made. */
  instances: readonly Pick<InstanceRecord, 'agent'>[],
  capacity: (name: string) => number = () => 0,
): AgentClient | undefined {
  const load = new Map<string, number>(candidates.map((a) => [a.name, 0]));
  for (const instance of instances) if (load.has(instance.agent)) load.set(instance.agent, load.get(instance.agent)! + 1);
  let best: AgentClient | undefined;
  for (const agent of candidates) {
    const limit = capacity(agent.name);
    if (limit > 0 && load.get(agent.name)! >= limit) continue;
    if (!best || load.get(agent.name)! < load.get(best.name)!) best = agent;
  }
  return best;
}
