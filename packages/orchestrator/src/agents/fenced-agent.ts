import type { AgentClient } from './agent-client.js';

/** What a fenced agent asks before it acts: resolves while this orchestrator leads, rejects otherwise (leadership/leadership.ts). */
export interface AgentFence {
  check(): Promise<void>;
}

/**
 * An agent whose every call that changes something (a container made or
 * removed, a pool set, an image kept or deleted) first asks the fence, so a
 * deposed leader does not act beside its successor. Reads are not fenced.
 */
export function fencedAgent(agent: AgentClient, fence: AgentFence): AgentClient {
  return {
    name: agent.name,
    createContainer: async (request) => {
      await fence.check();
      return agent.createContainer(request);
    },
    deleteContainer: async (name) => {
      await fence.check();
      return agent.deleteContainer(name);
    },
    setPools: async (pools) => {
      await fence.check();
      return agent.setPools(pools);
    },
    keepContainer: async (name, request) => {
      await fence.check();
      return agent.keepContainer(name, request);
    },
    deleteKept: async (id) => {
      await fence.check();
      return agent.deleteKept(id);
    },
    listContainers: () => agent.listContainers(),
    listKept: () => agent.listKept(),
    exportImage: (what) => agent.exportImage(what),
    health: () => agent.health(),
    close: () => agent.close(),
  };
}
