import { hostname } from 'node:os';
import { Hono, type Context } from 'hono';
import { requestId, type RequestIdVariables } from 'hono/request-id';
import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  ApiError,
  DEFAULT_MAX_BODY_BYTES,
  HOOK_REJECTED_HEADER,
  HOOK_SPOOL_DEPTH_HEADER,
  LEASE_EVENTS_PATH,
  bearerAuth,
  clientsQuery,
  errorBody,
  eventsQuery,
  hmacAuth,
  jsonErrorHandler,
  jsonNotFound,
  leaseEventSchema,
  limitBody,
  noQuery,
  type ClientDetail,
  type ClientList,
  type DeprovisionQueued,
  type RestoreQueued,
  type EventList,
  type Health,
  type InstanceList,
  type KeptList,
  type LeaseEventAccepted,
  type Ready,
  type RequestVerifier,
  type ServerList,
  type AgentList,
  type PoolStatus,
} from '@unionize/protocol';
import { orchestratorPeerMayCall } from './peer-access.js';
import type { AgentClient } from '../agents/agent-client.js';
import { deviceKeyOf, type EventDispatcher } from '../events/dispatcher.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Store } from '../store/store.js';
import type { Shares } from '../shares/shares.js';
import { createDashboard, type DashboardAuth, type StateHub } from '../dashboard/index.js';
import type { AgentHealthSource } from '../metrics/agent-health.js';
import type { OrchestratorMetrics } from '../metrics/metrics.js';
import { routeLabel } from '../metrics/route-label.js';
import { orchestratorOpenApi } from '../openapi/routes.js';
import { body, query } from './queries.js';
import { registerAgentRoutes, type AgentControl } from './agent-routes.js';
import { registerExportRoutes } from './export-routes.js';
import { registerShareRoutes, registerSharedDownload } from './share-routes.js';
import { registerBanRoutes } from './ban-routes.js';
import { Bans } from '../bans/bans.js';
import { beginRequest, elapsedMs, withRequestId } from '../context/request-context.js';
import { jsonListStream } from './json-stream.js';
import { clientView, eventView, instanceView, serverView, transitionView } from './views.js';
import { findCaller, sourceAddressOf } from './whoami.js';
import { registerLeadershipRoute, singleLeadership, type LeadershipSource } from './leadership-routes.js';
import { NotLeaderError } from '../store/fence.js';

export interface AppDeps {
  store: Store;
  dispatcher: EventDispatcher;
  lifecycle: Lifecycle;
  agents: readonly AgentClient[];
  verifier: RequestVerifier;
  log: Logger;
  /** Largest request body, bytes. */
  maxBodyBytes?: number;
  /** Prometheus metrics; /metrics is served only with `metricsToken` too. */
  metrics?: OrchestratorMetrics;
  /** Bearer token for /metrics (`[metrics] token_file`); without it /metrics answers 404. */
  metricsToken?: Buffer;
  /** Agents' last health checks, for /v1/agents. */
  agentHealth?: AgentHealthSource;
  /** Draining agents (POST /v1/agents/:name/drain); without it every agent is unknown there (404). */
  agentControl?: AgentControl;
  /** Agents' warm pools as they last answered (pools/pool-sync.ts); without it /v1/agents shows none (null). */
  pools?: { pools(agent: string): PoolStatus[] | null };
  /** Banned devices (/v1/bans); the lifecycle's. Tests without it get bans of their own, on the store, starting with none. */
  bans?: Bans;
  /** One-time download links ([share] dir); without, their routes answer 404. */
  shares?: Shares;
  /** The dashboard; without `auth` (`[dashboard] token_file`) its routes answer 404. */
  dashboard?: { auth?: DashboardAuth; hub: StateHub };
  /** GET /v1/leadership's answer: the pair's (leadership/), or one orchestrator alone (the default, named by its host). */
  leadership?: LeadershipSource;
}

type Env = { Variables: RequestIdVariables };

/** Header by which the hook reports how many events wait in its spool. */

const clientIdPattern = /^[0-9a-f]{20}$/;

/** Paths served without a signature: health, whoami (which shows a caller only its own client), and the API's description. */
const PUBLIC_PATHS = ['/healthz', '/readyz', '/v1/whoami', '/v1/openapi.json'];

/** The orchestrator's HTTP API (routes only; TLS and sockets live in main). */
export function createApp(deps: AppDeps): Hono<Env> {
  const { store, dispatcher, lifecycle, log, metrics } = deps;
  const app = new Hono<Env>();
  const onError = jsonErrorHandler(log);
  // A write or agent call refused by the leadership fence: this orchestrator was deposed, another takes the request.
  app.onError((error, c) => {
    if (!(error instanceof NotLeaderError)) return onError(error, c);
    log.warn({ err: error.message }, 'request refused: not the leader');
    c.header('retry-after', '1');
    return c.json(errorBody('STANDBY', `this orchestrator no longer leads (${error.message}); try another`), 503);
  });
  app.notFound(jsonNotFound);

  // x-request-id from the caller (the hook sends its eventId) or a new one:
  // the request's context (context/request-context.ts), which every log line
  // of the request and of the work it queues carries (pino mixin), and so do
  // the agent calls that work makes.
  app.use(requestId());
  app.use(async function observeRequest(c, next) {
    let ms = 0;
    await beginRequest(c.get('requestId'), async () => {
      await next();
      ms = elapsedMs()!;
    });
    const route = routeLabel(c);
    metrics?.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    // Successful reads, and accepted lease events, at debug. An event gets its
    // info line when it is applied ('event applied': id, client, action,
    // outcome), a duplicate when it is refused; its receipt is in the journal
    // (GET /v1/events). Three info lines per event were most of the log, and
    // about 7% of the orchestrator's CPU per event, under a burst of events.
    const quiet = c.res.status < 400 && (c.req.method === 'GET' || route === LEASE_EVENTS_PATH);
    log[quiet ? 'debug' : 'info']({ requestId: c.get('requestId'), method: c.req.method, path: c.req.path, status: c.res.status, ms }, 'request');
  });

  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  app.use(limitBody({ maxBytes: maxBodyBytes }));
  app.get('/healthz', (c) => c.json({ ok: true } satisfies Health));
  app.get('/readyz', (c) => c.json({ ok: true, queued: dispatcher.depth } satisfies Ready));

  // Prometheus cannot sign requests: a bearer token of its own (README, Metrics).
  const metricsAuth = deps.metricsToken ? bearerAuth({ token: deps.metricsToken }) : undefined;
  app.get('/metrics', async (c, next) => {
    if (!metricsAuth || !metrics) return c.json(errorBody('NOT_FOUND', 'metrics are off: set [metrics] token_file'), 404);
    return metricsAuth(c, next);
  }, async (c) => c.text(await metrics!.registry.metrics(), 200, { 'content-type': metrics!.registry.contentType }));

  app.route('/dashboard', createDashboard({ auth: deps.dashboard?.auth, hub: deps.dashboard?.hub }));
  // A share link's download: unsigned (the visitor has only the link), outside /v1.
  registerSharedDownload(app, { shares: deps.shares });

  app.use(
    '/v1/*',
    hmacAuth({
      verifier: deps.verifier,
      publicPaths: PUBLIC_PATHS,
      maxBodyBytes,
      allow: orchestratorPeerMayCall,
      onRefused: (info) => log.warn(info, 'request refused'),
    }),
  );

  app.get('/v1/openapi.json', (c) => c.json(orchestratorOpenApi()));
  registerLeadershipRoute(app, deps.leadership ?? singleLeadership(hostname()));

  // Unauthenticated: answers only about the client whose leased address the
  // request comes from, and only its address, name, state and container.
  app.get('/v1/whoami', async (c) => {
    query(c, noQuery);
    const source = sourceAddressOf(c);
    const found = source ? await findCaller(store, source) : undefined;
    if (!found) throw new ApiError(404, 'NOT_FOUND', 'no client holds a lease on the address this request comes from');
    return c.json(found);
  });

  app.post(LEASE_EVENTS_PATH, async (c) => {
    const event = await body(c, leaseEventSchema, 'lease event');
    // The hook sends x-request-id = eventId; without one, the event's id is the request's id all the same.
    if (!c.req.header('x-request-id')) {
      c.set('requestId', event.eventId);
      c.header('x-request-id', event.eventId);
    }
    // 202 once the event is on disk: journal() resolves after its group commit's sync.
    const accepted = await withRequestId(c.get('requestId'), () => dispatcher.journal(event));
    const count = (header: string) => {
      const n = Number(c.req.header(header) ?? Number.NaN);
      return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
    };
    const spoolDepth = count(HOOK_SPOOL_DEPTH_HEADER);
    if (spoolDepth !== undefined) metrics?.hookSpoolDepth.set({ server: event.server }, spoolDepth);
    const rejected = count(HOOK_REJECTED_HEADER);
    if (rejected !== undefined) metrics?.hookRejected.set({ server: event.server }, rejected);
    metrics?.received.inc({ server: event.server, action: event.action, duplicate: String(accepted.duplicate) });
    log.debug(
      { requestId: c.get('requestId'), eventId: accepted.eventId, client: accepted.clientId, action: event.action, duplicate: accepted.duplicate },
      'lease event accepted',
    );
    return c.json({ eventId: accepted.eventId, clientId: accepted.clientId, duplicate: accepted.duplicate } satisfies LeaseEventAccepted, 202);
  });

  app.get('/v1/clients', async (c) => {
    const { limit, after } = query(c, clientsQuery);
    if (limit === undefined && after === undefined) {
      // Every client: written in chunks, never as one string of the whole list.
      const instances = new Map((await store.listInstances()).map((i) => [i.clientId, i]));
      const body = jsonListStream('clients', await store.listClients(), (client) => clientView(client, instances.get(client.id)), { next: null });
      return c.body(body, 200, { 'content-type': 'application/json' });
    }
    const page = await store.listClientsPage(after ?? null, limit ?? 1000);
    const next = page.length === (limit ?? 1000) ? page[page.length - 1]!.id : null;
    return c.json({ clients: await Promise.all(page.map(async (client) => clientView(client, await store.getInstance(client.id)))), next } satisfies ClientList);
  });

  app.get('/v1/clients/:id', async (c) => {
    query(c, noQuery);
    const id = c.req.param('id');
    const client = clientIdPattern.test(id) ? await store.getClient(id) : undefined;
    if (!client) throw new ApiError(404, 'NOT_FOUND', `no client ${id.slice(0, 40)}`);
    return c.json({ ...clientView(client, await store.getInstance(id)), transitions: (await store.listTransitions(id, 50)).map(transitionView) } satisfies ClientDetail);
  });

  app.delete('/v1/clients/:id', async (c) => {
    query(c, noQuery);
    const id = c.req.param('id');
    const client = clientIdPattern.test(id) ? await store.getClient(id) : undefined;
    if (!client) throw new ApiError(404, 'NOT_FOUND', `no client ${id.slice(0, 40)}`);
    // Queued in this request's context: the deprovision is its work.
    dispatcher.run(deviceKeyOf(client), () => lifecycle.deprovision(id, 'deprovisioned by an operator'));
    return c.json({ clientId: id, queued: true } satisfies DeprovisionQueued, 202);
  });

  app.post('/v1/clients/:id/restore', async (c) => {
    query(c, noQuery);
    const id = c.req.param('id');
    const client = clientIdPattern.test(id) ? await store.getClient(id) : undefined;
    if (!client) throw new ApiError(404, 'NOT_FOUND', `no client ${id.slice(0, 40)}`);
    const kept = (await store.listKept(id)).at(-1);
    if (!kept) throw new ApiError(404, 'NOT_FOUND', `client ${id} has no kept image`);
    if (client.desired !== 'running' || client.state === 'gone') {
      throw new ApiError(409, 'NO_LEASE', `client ${id} holds no lease: a restore makes its container for its current lease, so the device must be on the network`);
    }
    dispatcher.run(deviceKeyOf(client), () => lifecycle.restore(id, kept));
    return c.json({ clientId: id, image: kept.image, queued: true } satisfies RestoreQueued, 202);
  });

  app.get('/v1/instances', async (c) => {
    query(c, noQuery);
    return c.json({ instances: (await store.listInstances()).map(instanceView) } satisfies InstanceList);
  });

  app.get('/v1/kept', async (c) => {
    query(c, noQuery);
    return c.json({ kept: await store.listKept() } satisfies KeptList);
  });

  app.get('/v1/events', async (c) => {
    const { limit = 100 } = query(c, eventsQuery);
    return c.json({ events: (await store.recentEvents(limit)).map(eventView) } satisfies EventList);
  });

  app.get('/v1/servers', async (c) => {
    query(c, noQuery);
    return c.json({ servers: (await store.listServers()).map(serverView) } satisfies ServerList);
  });

  app.get('/v1/agents', async (c) => {
    query(c, noQuery);
    const instances = await store.instancesPerAgent();
    const health = new Map((deps.agentHealth?.list() ?? []).map((h) => [h.name, h]));
    return c.json({
      agents: deps.agents.map((a) => ({
        name: a.name,
        instances: instances.get(a.name) ?? 0,
        healthy: health.get(a.name)?.healthy ?? null,
        checkedAt: health.get(a.name)?.checkedAt ?? null,
        pools: deps.pools?.pools(a.name) ?? null,
      })),
    } satisfies AgentList);
  });

  registerExportRoutes(app, { store, agents: deps.agents });
  registerShareRoutes(app, { shares: deps.shares });
  registerAgentRoutes(app, { control: deps.agentControl ?? { setDraining: async () => false }, store, dispatcher, lifecycle });
  registerBanRoutes(app, { bans: deps.bans ?? new Bans({ store, clock: { now: () => new Date() }, log, recorded: [] }), store, dispatcher, lifecycle });

  return app;
}
