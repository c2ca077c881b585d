import type { Env, Hono } from 'hono';
import { ApiError, drainRequestSchema, type DrainAccepted, nameSchema, noQuery } from '@unionize/protocol';
import { deviceKeyOf, type EventDispatcher } from '../events/dispatcher.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Store } from '../store/store.js';
import { body, query } from './queries.js';

/** What the drain route needs of the AgentMonitor. */
export interface AgentControl {
  setDraining(name: string, draining: boolean): Promise<boolean>;
}

/**
 * POST /v1/agents/:name/drain: stop placing new clients on an agent; its
 * clients stay until their leases end, or, with `move`, are moved now (each
 * in order with its client's events: made anew elsewhere, then removed here).
 */
export function registerAgentRoutes<E extends Env>(
  app: Hono<E>,
  deps: { control: AgentControl; store: Store; dispatcher: EventDispatcher; lifecycle: Lifecycle },
): void {
  app.post('/v1/agents/:name/drain', async (c) => {
    query(c, noQuery);
    const name = nameSchema.safeParse(c.req.param('name'));
    const request = await body(c, drainRequestSchema, 'drain request');
    if (!name.success || !(await deps.control.setDraining(name.data, request.drain))) {
      throw new ApiError(404, 'NOT_FOUND', `no agent ${String(c.req.param('name')).slice(0, 64)}`);
    }
    let moving = 0;
    if (request.drain && request.move) {
      for (const instance of await deps.store.listInstances()) {
        if (instance.agent !== name.data) continue;
        moving++;
        const client = await deps.store.getClient(instance.clientId);
        deps.dispatcher.run(client ? deviceKeyOf(client) : instance.clientId, () => deps.lifecycle.move(instance.clientId, `agent ${name.data} drained: moved on request`));
      }
    }
    return c.json({ agent: name.data, draining: request.drain, moving } satisfies DrainAccepted, 202);
  });
}
