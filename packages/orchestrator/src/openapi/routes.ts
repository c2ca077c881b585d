import {
  EXPORT_CONTENT_TYPE,
  LEASE_EVENTS_PATH,
  errorBodySchema,
  leaseEventSchema,
  openApiDocument,
  type RouteDoc,
  agentListSchema,
  banAddedSchema,
  banListSchema,
  banRemovedSchema,
  banRequestSchema,
  clientDetailSchema,
  clientListSchema,
  clientsQuery,
  deprovisionQueuedSchema,
  drainAcceptedSchema,
  drainRequestSchema,
  eventListSchema,
  eventsQuery,
  healthSchema,
  instanceListSchema,
  keptListSchema,
  restoreQueuedSchema,
  shareCreatedSchema,
  shareRequestSchema,
  leaseEventAcceptedSchema,
  noQuery,
  readySchema,
  leadershipSchema,
  serverListSchema,
  whoamiSchema,
} from '@unionize/protocol';

const error = (description: string) => ({ description, schema: errorBodySchema });
const refused = { 401: error('not signed, wrongly signed, expired or replayed'), 400: error('unknown or bad query parameter') };

/**
 * Every route the orchestrator serves, once, with the contract's schema
 * (protocol's orchestrator-api.ts) of each answer: the OpenAPI document is made
 * from this list, and a unit test checks it against the Hono app's routes.
 */
export const ORCHESTRATOR_ROUTES: readonly RouteDoc[] = [
  { method: 'get', path: '/healthz', summary: 'Liveness', auth: 'none', tags: ['health'], responses: { 200: { description: 'up', schema: healthSchema } } },
  { method: 'get', path: '/readyz', summary: 'Readiness, with the queue depth', auth: 'none', tags: ['health'], responses: { 200: { description: 'ready', schema: readySchema } } },
  {
    method: 'get', path: '/metrics', summary: 'Prometheus metrics (text format)', auth: 'bearer', tags: ['health'],
    responses: { 200: { description: 'metrics', contentType: 'text/plain; version=0.0.4' }, 401: error('no or wrong bearer token'), 404: error('metrics are off: no [metrics] token_file') },
  },
  {
    method: 'get', path: '/v1/openapi.json', summary: 'This document', auth: 'none', tags: ['meta'],
    responses: { 200: { description: 'OpenAPI 3.1 document', contentType: 'application/json' } },
  },
  {
    method: 'post', path: LEASE_EVENTS_PATH, summary: 'A lease event from orchestrator-hook (journaled, applied asynchronously)', auth: 'hmac', tags: ['events'],
    body: leaseEventSchema,
    responses: { 202: { description: 'journaled (or known already: duplicate)', schema: leaseEventAcceptedSchema }, 400: error('not a valid lease event'), 401: refused[401], 413: error('body too large') },
  },
  {
    method: 'get', path: '/v1/leadership', summary: 'This orchestrator\'s role (leader, standby or single) and who leads; a standby serves this and answers 503 (Retry-After) to the rest', auth: 'hmac', tags: ['health'], query: noQuery,
    responses: { 200: { description: 'the roles', schema: leadershipSchema }, ...refused },
  },
  { method: 'get', path: '/v1/whoami', summary: "The caller's own client and container, matched by source address", auth: 'none', tags: ['clients'], query: noQuery, responses: { 200: { description: 'the caller', schema: whoamiSchema }, 404: error('no lease on the source address') } },
  { method: 'get', path: '/v1/clients', summary: 'Clients with their instances: all, or a page (limit, after)', auth: 'hmac', tags: ['clients'], query: clientsQuery, responses: { 200: { description: 'clients', schema: clientListSchema }, ...refused } },
  { method: 'get', path: '/v1/clients/:id', summary: 'One client with its last 50 transitions', auth: 'hmac', tags: ['clients'], query: noQuery, responses: { 200: { description: 'the client', schema: clientDetailSchema }, 404: error('no such client'), ...refused } },
  { method: 'delete', path: '/v1/clients/:id', summary: "Remove the client's container now (queued in order with its events)", auth: 'hmac', tags: ['clients'], query: noQuery, responses: { 202: { description: 'queued', schema: deprovisionQueuedSchema }, 404: error('no such client'), ...refused } },
  {
    method: 'post', path: '/v1/clients/:id/restore', summary: "Make the device's container again from its newest kept image, on the agent that holds it (queued; what runs now is removed, unkept)", auth: 'hmac', tags: ['clients'], query: noQuery,
    responses: { 202: { description: 'queued', schema: restoreQueuedSchema }, 404: error('no such client, or no kept image'), 409: error('the device holds no lease'), ...refused },
  },
  { method: 'get', path: '/v1/instances', summary: 'Every container recorded', auth: 'hmac', tags: ['clients'], query: noQuery, responses: { 200: { description: 'instances', schema: instanceListSchema }, ...refused } },
  {
    method: 'get', path: '/v1/clients/:id/export', summary: "The client's live container, or else its newest kept image, as a docker save tarball (gzip), streamed from its agent", auth: 'hmac', tags: ['clients'], query: noQuery,
    responses: { 200: { description: 'docker save, gzipped', contentType: EXPORT_CONTENT_TYPE }, 404: error('no such client, or neither a container nor a kept image'), 502: error('the agent refused'), 503: error("the client's agent is unreachable or not configured"), ...refused },
  },
  {
    method: 'post', path: '/v1/clients/:id/shares', summary: "A one-time download link of the client's export (spooled on the orchestrator until downloaded or expired)", auth: 'hmac', tags: ['clients'],
    query: noQuery, body: shareRequestSchema,
    responses: { 201: { description: 'the link', schema: shareCreatedSchema }, 404: error('share links are off ([share] dir), no such client, or nothing to export'), 502: error('the agent refused, or the export broke off'), 503: error("the client's agent is unreachable"), 507: error('the share directory would pass [share] max_mb'), ...refused, 400: error('seconds out of range or past [share] max_days, or a bad query parameter') },
  },
  {
    method: 'get', path: '/shared/:token', summary: 'A share link: the export, once, with its length; unsigned (the token is the right to it)', auth: 'none', tags: ['clients'], query: noQuery,
    responses: { 200: { description: 'docker save, gzipped', contentType: EXPORT_CONTENT_TYPE }, 404: error('no such link'), 410: error('used already, expired, or its file is gone') },
  },
  { method: 'get', path: '/v1/kept', summary: 'Containers kept as images when their lease ended, oldest first', auth: 'hmac', tags: ['clients'], query: noQuery, responses: { 200: { description: 'kept images', schema: keptListSchema }, ...refused } },
  { method: 'get', path: '/v1/events', summary: 'The newest journaled lease events', auth: 'hmac', tags: ['events'], query: eventsQuery, responses: { 200: { description: 'newest first', schema: eventListSchema }, ...refused } },
  { method: 'get', path: '/v1/servers', summary: 'DHCP servers that have sent events', auth: 'hmac', tags: ['events'], query: noQuery, responses: { 200: { description: 'servers', schema: serverListSchema }, ...refused } },
  {
    method: 'post', path: '/v1/agents/:name/drain', summary: 'Drain an agent (no new clients), or undo it; with move, move its clients now', auth: 'hmac', tags: ['agents'],
    query: noQuery, body: drainRequestSchema,
    responses: { 202: { description: 'draining set; moves queued', schema: drainAcceptedSchema }, 404: error('no such agent'), ...refused },
  },
  { method: 'get', path: '/v1/agents', summary: 'Agents with their load and last health check', auth: 'hmac', tags: ['agents'], query: noQuery, responses: { 200: { description: 'agents', schema: agentListSchema }, ...refused } },
  { method: 'get', path: '/v1/bans', summary: 'Banned devices (by MAC or DUID) whose bans are in force', auth: 'hmac', tags: ['bans'], query: noQuery, responses: { 200: { description: 'bans', schema: banListSchema }, ...refused } },
  {
    method: 'post', path: '/v1/bans', summary: "Ban a device: its clients' containers are removed now (queued in order with their events), it gets no new one, and its DHCP server ignores it (with [pinning] hostsdir)", auth: 'hmac', tags: ['bans'],
    query: noQuery, body: banRequestSchema,
    responses: { 201: { description: 'banned (or its ban changed); removals queued', schema: banAddedSchema }, 400: error('not a MAC or DUID, or a bad duration'), 401: refused[401] },
  },
  { method: 'delete', path: '/v1/bans/:target', summary: 'Lift the ban of a device (its MAC or DUID)', auth: 'hmac', tags: ['bans'], query: noQuery, responses: { 200: { description: 'unbanned', schema: banRemovedSchema }, 404: error('not banned'), ...refused, 400: error('not a MAC or DUID, or an unknown query parameter') } },
  {
    method: 'get', path: '/dashboard', summary: 'The dashboard page (or its login form without a session)', auth: 'none', tags: ['dashboard'],
    responses: { 200: { description: 'HTML', contentType: 'text/html' }, 404: error('the dashboard is off: no [dashboard] token_file') },
  },
  {
    method: 'post', path: '/dashboard/login', summary: 'Exchange the operator token (form field `token`) for a session cookie', auth: 'none', tags: ['dashboard'],
    bodyContentType: 'application/x-www-form-urlencoded',
    responses: { 303: { description: 'signed in: session cookie set, redirect to /dashboard' }, 401: { description: 'wrong token: the login form again', contentType: 'text/html' } },
  },
  {
    method: 'get', path: '/dashboard/assets/:name', summary: "The page's chart library (uPlot's script and stylesheet, from the orchestrator's node_modules), by content-hashed name", auth: 'session', tags: ['dashboard'],
    responses: { 200: { description: 'the file, cacheable for good (private, immutable)', contentType: 'text/javascript' }, 304: { description: 'not modified (If-None-Match)' }, 401: error('no valid session'), 404: error('no such asset') },
  },
  { method: 'post', path: '/dashboard/logout', summary: 'End the session', auth: 'session', tags: ['dashboard'], responses: { 303: { description: 'cookie cleared, redirect to /dashboard' } } },
  {
    method: 'get', path: '/dashboard/events', summary: 'Server-sent events: `state` with the whole dashboard state on every change', auth: 'session', tags: ['dashboard'],
    responses: { 200: { description: 'event stream', contentType: 'text/event-stream' }, 401: error('no valid session') },
  },
];

let cached: Record<string, unknown> | undefined;

export function orchestratorOpenApi(): Record<string, unknown> {
  cached ??= openApiDocument(
    {
      title: 'orchestrator',
      version: '1',
      description: 'Receives signed DHCPv6 lease events and drives the unionize agents. Every /v1 route but whoami and this document is HMAC-signed.',
    },
    ORCHESTRATOR_ROUTES,
  );
  return cached;
}
