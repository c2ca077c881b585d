import { describe, expect, it } from 'vitest';
import type { AgentClient } from './agent-client.js';
import { fencedAgent } from './fenced-agent.js';

describe('fencedAgent', () => {
  const calls: string[] = [];
  const agent = new Proxy({ name: 'a' } as AgentClient, {
    get: (target, key) => (key === 'name' ? target.name : async () => { calls.push(String(key)); return null; }),
  });

  it('asks the fence before each call that acts, and makes none it refuses; reads go through', async () => {
    let leading = true;
    const fenced = fencedAgent(agent, { check: async () => { if (!leading) throw new Error('not the leader'); } });
    await fenced.deleteContainer('x');
    leading = false;
    for (const act of [() => fenced.createContainer({} as never), () => fenced.deleteContainer('x'), () => fenced.setPools([]), () => fenced.keepContainer('x', {} as never), () => fenced.deleteKept('i')]) {
      await expect(act()).rejects.toThrow('not the leader');
    }
    await fenced.listContainers();
    await fenced.listKept();
    await fenced.health();
    expect(calls).toEqual(['deleteContainer', 'listContainers', 'listKept', 'health']);
  });
});
