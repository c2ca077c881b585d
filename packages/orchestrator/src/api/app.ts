import { Hono, type Context } from 'hono';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  ApiError,
  DEFAULT_MAX_BODY_BYTES,
  LEASE_EVENTS_PATH,
  hmacAuth,
  invalidRequest,
  jsonErrorHandler,
  jsonNotFound,
  leaseEventSchema,
  limitBody,
  type RequestVerifier,
} from '@unionize/protocol';
import type { AgentClient } from '../agents/agent-client.js';
import type { EventDispatcher } from '../events/dispatcher.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Store } from '../store/store.js';
import { clientView, eventView } from './views.js';
import { findCaller, sourceAddressOf } from './whoami.js';

export interface AppDeps {
  store: Store;
  dispatcher: EventDispatcher;
  lifecycle: Lifecycle;
  agents: readonly AgentClient[];
  verifier: RequestVerifier;
  log: Logger;
  /** Largest request body, bytes. */
  maxBodyBytes?: number;
}

const clientIdPattern = /^[0-9a-f]{20}$/;

/** Query strings are checked like bodies: unknown parameters and bad values are a 400. */
const noQuery = z.object({}).strict();
const eventsQuery = z
  .object({ limit: z.string().regex(/^[0-9]{1,4}$/, 'must be a number 1..1000').transform(Number).pipe(z.number().int().min(1).max(1000)).optional() })
  .strict();

function query<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw invalidRequest(parsed.error, 'query');
  return parsed.data;
}

/** Paths served without a signature: health, and whoami (which shows a caller only its own client). */
const PUBLIC_PATHS = ['/healthz', '/readyz', '/v1/whoami'];

/** The orchestrator's HTTP API (routes only; TLS and sockets live in main). */
export function createApp(deps: AppDeps): Hono {
  const { store, dispatcher, lifecycle, log } = deps;
  const app = new Hono();
  app.onError(jsonErrorHandler(log));
  app.notFound(jsonNotFound);

  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  app.use(limitBody({ maxBytes: maxBodyBytes }));
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', (c) => c.json({ ok: true, queued: dispatcher.depth }));

  app.use(
    '/v1/*',
    hmacAuth({
      verifier: deps.verifier,
      publicPaths: PUBLIC_PATHS,
      maxBodyBytes,
      onRefused: (info) => log.warn(info, 'request refused'),
    }),
  );

  // Unauthenticated: answers only about the client whose leased address the
  // request comes from, and only its address, name, state and container.
  app.get('/v1/whoami', (c) => {
    query(c, noQuery);
    const source = sourceAddressOf(c);
    const found = source ? findCaller(store, source) : undefined;
    if (!found) throw new ApiError(404, 'NOT_FOUND', 'no client holds a lease on the address this request comes from');
    return c.json(found);
  });

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
    query(c, noQuery);
    const clients = store.listClients().map((client) => clientView(client, store.getInstance(client.id)));
    return c.json({ clients });
  });

  app.get('/v1/clients/:id', (c) => {
    query(c, noQuery);
    const id = c.req.param('id');
    const client = clientIdPattern.test(id) ? store.getClient(id) : undefined;
    if (!client) throw new ApiError(404, 'NOT_FOUND', `no client ${id.slice(0, 40)}`);
    return c.json({ ...clientView(client, store.getInstance(id)), transitions: store.listTransitions(id, 50) });
  });

  app.delete('/v1/clients/:id', (c) => {
    query(c, noQuery);
    const id = c.req.param('id');
    const client = clientIdPattern.test(id) ? store.getClient(id) : undefined;
    if (!client) throw new ApiError(404, 'NOT_FOUND', `no client ${id.slice(0, 40)}`);
    dispatcher.run(id, () => lifecycle.deprovision(id, 'deprovisioned by an operator'));
    return c.json({ clientId: id, queued: true }, 202);
  });

  app.get('/v1/instances', (c) => {
    query(c, noQuery);
    return c.json({ instances: store.listInstances() });
  });

  app.get('/v1/events', (c) => {
    const { limit = 100 } = query(c, eventsQuery);
    return c.json({ events: store.recentEvents(limit).map(eventView) });
  });

  app.get('/v1/servers', (c) => {
    query(c, noQuery);
    return c.json({ servers: store.listServers() });
  });

  app.get('/v1/agents', (c) => {
    query(c, noQuery);
    const instances = store.listInstances();
    return c.json({
      agents: deps.agents.map((a) => ({ name: a.name, instances: instances.filter((i) => i.agent === a.name).length })),
    });
  });

  return app;
}
