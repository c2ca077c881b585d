import type { Env, Hono } from 'hono';
import {
  ApiError, banRequestSchema, banTargetText, noQuery, parseBanTarget,
  type BanAdded, type BanList, type BanRemoved, type BanTarget, type BanView,
} from '@unionize/protocol';
import { banReason, covers, type Bans } from '../bans/bans.js';
import { deviceKeyOf, type EventDispatcher } from '../events/dispatcher.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Store } from '../store/store.js';
import type { BanRecord } from '../store/types.js';
import { body, query } from './queries.js';

export function banView(ban: BanRecord): BanView {
  return { target: banTargetText(ban), kind: ban.kind, since: ban.since, until: ban.until };
}

function targetOf(text: string): BanTarget {
  const parsed = parseBanTarget(text);
  if (!parsed.ok) throw new ApiError(400, 'INVALID_REQUEST', parsed.error);
  return parsed.target;
}

/**
 * Bans (bans/bans.ts): GET /v1/bans lists them; POST /v1/bans bans a device
 * and queues the removal of its clients' containers, each in order with its
 * client's events; DELETE /v1/bans/:target lifts one.
 */
export function registerBanRoutes<E extends Env>(
  app: Hono<E>,
  deps: { bans: Bans; store: Store; dispatcher: EventDispatcher; lifecycle: Lifecycle },
): void {
  app.get('/v1/bans', (c) => {
    query(c, noQuery);
    return c.json({ bans: deps.bans.list().map(banView) } satisfies BanList);
  });

  app.post('/v1/bans', async (c) => {
    query(c, noQuery);
    const request = await body(c, banRequestSchema, 'ban request');
    const ban = await deps.bans.add(targetOf(request.target), request.seconds);
    let removing = 0;
    for (const client of await deps.store.listClients({ retired: false })) {
      if (client.state === 'gone' || !covers(ban, client)) continue;
      removing++;
      deps.dispatcher.run(deviceKeyOf(client), () => deps.lifecycle.deprovision(client.id, banReason(ban)));
    }
    return c.json({ ban: banView(ban), removing } satisfies BanAdded, 201);
  });

  app.delete('/v1/bans/:target', async (c) => {
    query(c, noQuery);
    const target = targetOf(c.req.param('target'));
    if (!(await deps.bans.remove(target))) throw new ApiError(404, 'NOT_FOUND', `${banTargetText(target)} is not banned`);
    return c.json({ target: banTargetText(target), removed: true } satisfies BanRemoved);
  });
}
