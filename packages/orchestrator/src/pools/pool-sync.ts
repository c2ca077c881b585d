import type { PoolStatus } from '@unionize/protocol';
import type { Logger } from 'pino';
import { poolSpecOf } from '../lifecycle/container-request.js';
import type { Profile } from '../profiles/profiles.js';
import type { AgentClient } from '../agents/agent-client.js';
import type { AgentStatus } from '../agents/agent-monitor.js';
import { Repeat } from '../repeat.js';

/**
 * Tells each agent which warm pools to keep (PUT /v1/pools), and remembers
 * what each answered for /v1/agents, the dashboard and /metrics.
 *
 * Every profile with `pool = N` asks for N members on each agent, except:
 * a draining agent keeps none (draining empties its pools); a dead one is
 * not told anything until it is back (its first answer must not be to a
 * round that still thought it dead, which would empty its pools); and pool
 * members count toward an agent's `capacity`, so together they take only the
 * room its clients' containers leave (profiles in config order). A claim
 * turns a member into a client's container, so a full agent still takes a
 * device its pool can serve; what it then lacks is refilled only as room
 * comes back.
 */
export interface PoolSyncOptions {
  agents: readonly AgentClient[];
  /** Every profile, the default one (`[instances]`) last; of two of one name, the first. */
  profiles: readonly Profile[];
  status: (agent: string) => Pick<AgentStatus, 'health' | 'draining' | 'capacity'> | undefined;
  /** Its clients' containers, by agent. */
  instancesPerAgent: () => Promise<Map<string, number>>;
  log: Logger;
}

export class PoolSync {
  readonly #o: PoolSyncOptions;
  readonly #pools = new Map<string, PoolStatus[]>();
  /** With no pool configured, agents already told so (they emptied what they kept) or that answered 404 (an older unionize): not asked again. */
  readonly #noPools = new Set<string>();
  /** The last failure per agent: a new one is a warning, the same one again is not. */
  readonly #failing = new Map<string, string>();
  readonly #repeat = new Repeat(() => this.syncAll(), (error) => this.#o.log.warn({ err: error }, 'pools: round failed'));
  #running: Promise<void> | undefined;

  constructor(options: PoolSyncOptions) {
    this.#o = options;
  }

  /** An agent's pools as it last answered; null before it answered. */
  pools(agent: string): PoolStatus[] | null {
    return this.#pools.get(agent) ?? null;
  }

  /** Whether the agent said it keeps this pool, with a size above 0 (a request naming an empty one is only a miss). */
  has(agent: string, pool: string): boolean {
    return this.#pools.get(agent)?.some((p) => p.name === pool && p.size > 0) ?? false;
  }

  /** Whether any profile has a pool. */
  get wanted(): boolean {
    return this.#o.profiles.some((p) => p.pool > 0);
  }

  /** One round; a round already running is waited for, not doubled. */
  syncAll(): Promise<void> {
    this.#running ??= (async () => {
      // The room capacity leaves matters only when some profile has a pool.
      const instances = this.wanted ? await this.#o.instancesPerAgent() : new Map<string, number>();
      await Promise.all(this.#o.agents.map((agent) => this.#sync(agent, instances.get(agent.name) ?? 0)));
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** What this agent should keep now. */
  sizesFor(agent: string, instances: number): Array<{ profile: Profile; size: number }> {
    const status = this.#o.status(agent);
    const takes = status !== undefined && !status.draining;
    let room = status && status.capacity > 0 ? Math.max(0, status.capacity - instances) : Number.POSITIVE_INFINITY;
    const pooled = this.#o.profiles.filter((p, i, all) => p.pool > 0 && all.findIndex((q) => q.name === p.name) === i);
    return pooled.map((profile) => {
      const size = takes ? Math.min(profile.pool, room) : 0;
      room -= size;
      return { profile, size };
    });
  }

  async #sync(agent: AgentClient, instances: number): Promise<void> {
    if (!this.wanted && this.#noPools.has(agent.name)) return;
    if (this.#o.status(agent.name)?.health === 'dead') return;
    const specs = this.sizesFor(agent.name, instances).map(({ profile, size }) => poolSpecOf(profile, size));
    try {
      const answer = await agent.setPools(specs);
      if (answer === null) {
        if (!this.#noPools.has(agent.name) && this.wanted) this.#o.log.warn({ agent: agent.name }, 'pools: the agent has no PUT /v1/pools (an older unionize): its containers are made cold');
        this.#noPools.add(agent.name);
        this.#pools.delete(agent.name);
        return;
      }
      this.#pools.set(agent.name, answer.pools);
      if (this.wanted) this.#noPools.delete(agent.name);
      else this.#noPools.add(agent.name);
      if (this.#failing.delete(agent.name)) this.#o.log.info({ agent: agent.name }, 'pools: the agent took its pools again');
    } catch (error) {
      // What it said last still holds: it keeps its pools whether or not one telling reached it.
      const message = (error as Error).message;
      const level = this.#failing.get(agent.name) === message ? 'debug' : 'warn';
      this.#failing.set(agent.name, message);
      this.#o.log[level]({ agent: agent.name, err: error }, 'pools: agent not told its pools (its containers are made cold meanwhile); each round tries again');
    }
  }

  start(intervalMs: number): void {
    this.#repeat.start(intervalMs);
  }

  stop(): void {
    this.#repeat.stop();
  }
}
