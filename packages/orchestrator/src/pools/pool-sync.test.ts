import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildProfiles, defaultProfile } from '../profiles/profiles.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { PoolSync } from './pool-sync.js';

const log = pino({ level: 'silent' });
const profiles = buildProfiles(
  {
    web: { pool: 3, env: ['GREETING=hi', 'CLIENT_ID=profile-set'], cooldown_seconds: 60, keep: false, keep_days: 30, keep_max_mb: 10_240 },
    none: { pool: 0, cooldown_seconds: 60, keep: false, keep_days: 30, keep_max_mb: 10_240 },
  },
  'img:1',
);

function setup(status: Record<string, { health: 'healthy' | 'unhealthy' | 'dead'; draining: boolean; capacity: number }>, instances: Record<string, number> = {}) {
  const agents = Object.keys(status).map((name) => new FakeAgent(name));
  const sync = new PoolSync({
    agents, profiles: [...profiles, defaultProfile('img:1', 2)], log,
    status: (name) => status[name], instancesPerAgent: async () => new Map(Object.entries(instances)),
  });
  return { agents, sync };
}

describe('PoolSync', () => {
  it('asks each agent for every pooled profile, as the profile makes containers but the device', async () => {
    const { agents, sync } = setup({ dock1: { health: 'healthy', draining: false, capacity: 0 } });
    await sync.syncAll();
    expect(agents[0]!.pools).toEqual([
      { name: 'web', size: 3, image: 'img:1', env: { GREETING: 'hi' } },
      { name: 'default', size: 2, image: 'img:1', env: {} },
    ]);
    expect(sync.pools('dock1')?.map((p) => [p.name, p.ready])).toEqual([['web', 3], ['default', 2]]);
    expect(sync.has('dock1', 'web')).toBe(true);
    expect(sync.has('dock1', 'none')).toBe(false);
  });

  it('empties the pools of a draining or dead agent, and fits them in the room capacity leaves', async () => {
    const { agents, sync } = setup(
      {
        draining: { health: 'healthy', draining: true, capacity: 0 },
        dead: { health: 'dead', draining: false, capacity: 0 },
        full: { health: 'healthy', draining: false, capacity: 10 },
        roomy: { health: 'healthy', draining: false, capacity: 10 },
      },
      { full: 10, roomy: 6 },
    );
    await sync.syncAll();
    const sizes = (i: number) => agents[i]!.pools.map((p) => p.size);
    expect(sizes(0)).toEqual([0, 0]);
    // Dead: not told anything (its members stay until it is back and told again).
    expect(agents[1]!.pools).toEqual([]);
    expect(sizes(2)).toEqual([0, 0]);
    expect(sizes(3)).toEqual([3, 1]);
  });

  it('an agent without pools (404) is remembered, and no request names a pool there', async () => {
    const { agents, sync } = setup({ old: { health: 'healthy', draining: false, capacity: 0 } });
    agents[0]!.setPools = async () => null;
    await sync.syncAll();
    expect(sync.pools('old')).toBeNull();
    expect(sync.has('old', 'web')).toBe(false);
  });

  it('an agent that does not answer one round keeps what it said before; a pool of size 0 is not named', async () => {
    const { agents, sync } = setup({ dock1: { health: 'healthy', draining: false, capacity: 0 } });
    await sync.syncAll();
    agents[0]!.down = true;
    await sync.syncAll();
    expect(sync.pools('dock1')?.map((p) => p.name)).toEqual(['web', 'default']);
    expect(sync.has('dock1', 'web')).toBe(true);
    agents[0]!.down = false;
    agents[0]!.setPools = async (pools) => ({ pools: pools.map((p) => ({ name: p.name, size: 0, ready: 0, starting: 0, claims: 0, misses: 0, lastRefillMs: null })), maxMembers: 32 });
    await sync.syncAll();
    expect(sync.has('dock1', 'web')).toBe(false);
  });
});
