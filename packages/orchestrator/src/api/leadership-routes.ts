import type { Hono } from 'hono';
import { noQuery, type LeadershipView } from '@unionize/protocol';
import { query } from './queries.js';

/** Where GET /v1/leadership's answer comes from (leadership/leadership.ts for a pair; `single` alone). */
export interface LeadershipSource {
  view(): Promise<LeadershipView>;
}

/** An orchestrator alone on its store (memory or SQLite): no one else can lead. */
export function singleLeadership(name: string): LeadershipSource {
  return { view: async () => ({ name, role: 'single', leader: null }) };
}

/** GET /v1/leadership (signed): served by the leader and the standby alike. */
export function registerLeadershipRoute(app: Hono<any>, source: LeadershipSource): void {
  app.get('/v1/leadership', async (c) => {
    query(c, noQuery);
    return c.json(await source.view() satisfies LeadershipView);
  });
}
