import { Hono } from 'hono';
import type { Logger } from 'pino';
import {
  ApiError,
  LEASE_EVENTS_PATH,
  hmacAuth,
  invalidRequest,
  jsonErrorHandler,
  jsonNotFound,
  leaseEventSchema,
  type RequestVerifier,
} from '@unionize/protocol';
import type { AgentClient } from '../agents/agent-client.js';
import type { EventDispatcher } from '../events/dispatcher.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Store } from '../store/store.js';
import { clientView, eventView } from './views.js';

export interface AppDeps {
  store: Store;
  dispatcher: EventDispatcher;
  lifecycle: Lifecycle;
  agents: readonly AgentClient[];
  verifier: RequestVerifier;
  log: Logger;
}

const clientIdPattern = /^[0-9a-f]{20}$/;

/** The orchestrator's HTTP API (routes only; TLS and sockets live in main). */
export function createApp(deps: AppDeps): Hono {
  const { store, dispatcher, lifecycle, log } = deps;
  const app = new Hono();
  app.onError(jsonErrorHandler(log));
  app.notFound(jsonNotFound);

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', (c) => c.json({ ok: true, queued: dispatcher.depth }));

  app.use(
    '/v1/*',
    hmacAuth({
      verifier: deps.verifier,
      onRefused: (info) => log.warn(info, 'request refused'),
    }),
  );

  app.post(LEASE_EVENTS_PATH, async (c) => {
    let json: unknown;
    try {
      json = JSON.parse(await c.req.text());
    } catch {
      throw new ApiError(400, 'INVALID_JSON', 'body is not JSON');
    }
    const parsed = leaseEventSchema.safeParse(json);
    if (!parsed.success) throw invalidRequest(parsed.error, 'lease event');
    const accepted = dispatcher.accept(parsed.data);
    return c.json({ eventId: accepted.eventId, clientId: accepted.clientId, duplicate: accepted.duplicate }, 202);
  });

  app.get('/v1/clients', (c) => {
    const clients = store.listClients().map((client) => clientView(client, store.getInstance(client.id)));
    return c.json({ clients });
  });

  app.get('/v1/clients/:id', (c) => {
    const id = c.req.param('id');
    const client = clientIdPattern.test(id) ? store.getClient(id) : undefined;
    if (!client) throw new ApiError(404, 'NOT_FOUND', `no client ${id.slice(0, 40)}`);
    return c.json({ ...clientView(client, store.getInstance(id)), transitions: store.listTransitions(id, 50) });
  });

  app.delete('/v1/clients/:id', (c) => {
    const id = c.req.param('id');
    const client = clientIdPattern.test(id) ? store.getClient(id) : undefined;
    if (!client) throw new ApiError(404, 'NOT_FOUND', `no client ${id.slice(0, 40)}`);
    dispatcher.run(id, () => lifecycle.deprovision(id, 'deprovisioned by an operator'));
    return c.json({ clientId: id, queued: true }, 202);
  });

  app.get('/v1/instances', (c) => c.json({ instances: store.listInstances() }));

  app.get('/v1/events', (c) => {
    const limit = Math.min(1000, Math.max(1, Number(c.req.query('limit') ?? '100') || 100));
    return c.json({ events: store.recentEvents(limit).map(eventView) });
  });

  app.get('/v1/servers', (c) => c.json({ servers: store.listServers() }));

  app.get('/v1/agents', (c) => {
    const instances = store.listInstances();
    return c.json({
      agents: deps.agents.map((a) => ({ name: a.name, instances: instances.filter((i) => i.agent === a.name).length })),
    });
  });

  return app;
}
