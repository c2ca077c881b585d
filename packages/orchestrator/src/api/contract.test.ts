import { signedHeaders, testOrchestratorKeyring } from '@unionize/protocol/testing/keys';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestVerifier, type LeaseEvent, type RouteDoc } from '@unionize/protocol';
import { AgentMonitor } from '../agents/agent-monitor.js';
import { EventDispatcher } from '../events/dispatcher.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { agentHealthFrom } from '../metrics/agent-health.js';
import { ORCHESTRATOR_ROUTES } from '../openapi/routes.js';
import { MemoryStore } from '../store/memory-store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { createApp } from './app.js';
import { Shares } from '../shares/shares.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { leaseEventFixture } from '@unionize/protocol/testing/lease-event';

/**
 * The contract (protocol's orchestrator-api.ts) against the app: every JSON
 * route is asked, in-process, for each answer it documents that a request can
 * bring about, and every answer must be one its route documents, for its
 * status, with exactly the documented fields (a parse keeps documented fields
 * only, so the parsed answer must equal the answer).
 */

const log = pino({ level: 'silent' });
const clock = { now: () => new Date() };
const store = new MemoryStore({ prefix: 'fd00:3::/64' });
const agents = [new FakeAgent('dock1'), new FakeAgent('dock2')];
const lifecycle = new Lifecycle({ store, agents, clock, log, image: 'img:1', prefixLength: 64 });
const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 2 });
const monitor = new AgentMonitor({
  agents,
  settings: agents.map((a) => ({ name: a.name, url: `https://${a.name}`, capacity: 0, drain: false })),
  store,
  clock,
  log,
  deadAfterMs: 60_000,
  recorded: [],
});
const shares = new Shares({ store, agents, clock, log, dir: makeTempDir('contract-shares-'), maxSeconds: 30 * 86_400, maxBytes: 1024 * 1024 });
const app = createApp({ store, dispatcher, lifecycle, agents, verifier: new RequestVerifier({ keys: testOrchestratorKeyring() }), log, agentHealth: agentHealthFrom(monitor), agentControl: monitor, shares });

/** The documented route a request is for: its method and its Hono path pattern. */
function routeOf(method: string, path: string): RouteDoc | undefined {
  const bare = path.split('?')[0]!;
  return ORCHESTRATOR_ROUTES.find((r) => r.method === method.toLowerCase() && new RegExp(`^${r.path.replace(/:[a-z]+/g, '[^/]+')}$`).test(bare));
}

/** Answers checked, as `METHOD PATH STATUS` of the documented route. */
const checked = new Set<string>();

interface Ask {
  body?: unknown;
  sign?: boolean;
  from?: string;
}

/** Ask the app, check the answer against its route's documented answer for that status, and return the parsed body. */
async function ask(method: string, path: string, options: Ask = {}): Promise<{ status: number; body: any }> {
  const route = routeOf(method, path);
  expect(route, `${method} ${path} is not a documented route`).toBeDefined();
  const text = options.body === undefined ? '' : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.sign !== false) Object.assign(headers, signedHeaders(method, path, text));
  const env = options.from ? { incoming: { socket: { remoteAddress: options.from } } } : undefined;
  const res = await app.request(path, { method, headers, ...(text ? { body: text } : {}) }, env);
  const documented = route!.responses[res.status];
  expect(documented, `${method} ${path} answered ${res.status}, which its route does not document`).toBeDefined();
  checked.add(`${route!.method.toUpperCase()} ${route!.path} ${res.status}`);
  if (!documented!.schema) return { status: res.status, body: await res.text() };
  const body: unknown = await res.json();
  const parsed = documented!.schema.safeParse(body);
  expect(parsed.error?.issues ?? [], `${method} ${path} ${res.status}: the answer does not match its schema`).toEqual([]);
  expect(parsed.data, `${method} ${path} ${res.status}: the answer has fields its schema does not describe`).toStrictEqual(body);
  return { status: res.status, body };
}

function leaseEvent(overrides: Partial<LeaseEvent> = {}): LeaseEvent {
  return leaseEventFixture({ expiresAt: new Date(Date.now() + 3_600_000).toISOString(), ...overrides });
}

describe('every answer of the orchestrator API is one its contract describes', () => {
  afterAll(() => dispatcher.stop());

  it('health and readiness', async () => {
    expect((await ask('GET', '/healthz')).status).toBe(200);
    expect((await ask('GET', '/readyz')).status).toBe(200);
  });

  it('lease events: accepted, duplicate, invalid, unsigned', async () => {
    const first = leaseEvent();
    expect((await ask('POST', '/v1/lease-events', { body: first })).body.duplicate).toBe(false);
    expect((await ask('POST', '/v1/lease-events', { body: first })).body.duplicate).toBe(true);
    await ask('POST', '/v1/lease-events', { body: leaseEvent({ duid: '00:03:00:01:02:aa:bb:cc:dd:02', address: 'fd00:1::1001', hostname: null, mac: null }) });
    const third = { duid: '00:03:00:01:02:aa:bb:cc:dd:03', address: 'fd00:1::1002', mac: '02:aa:bb:cc:dd:03' };
    await ask('POST', '/v1/lease-events', { body: leaseEvent(third) });
    await ask('POST', '/v1/lease-events', { body: leaseEvent({ ...third, action: 'del' }) });
    await dispatcher.idle();
    expect((await ask('POST', '/v1/lease-events', { body: { ...leaseEvent(), duid: 'nope' } })).status).toBe(400);
    expect((await ask('POST', '/v1/lease-events', { body: 'not json' })).status).toBe(400);
    expect((await ask('POST', '/v1/lease-events', { body: leaseEvent(), sign: false })).status).toBe(401);
  });

  it('clients: all, a page, one, and removing one', async () => {
    const all = (await ask('GET', '/v1/clients')).body;
    expect(all.clients.length).toBe(3);
    expect(all.clients.some((c: any) => c.instance !== null)).toBe(true);
    expect(all.clients.some((c: any) => c.instance === null)).toBe(true);
    const page = (await ask('GET', '/v1/clients?limit=1')).body;
    expect(page.next).not.toBeNull();
    expect((await ask('GET', `/v1/clients?limit=2&after=${page.next}`)).status).toBe(200);
    expect((await ask('GET', '/v1/clients?limit=0')).status).toBe(400);
    const ready = all.clients.find((c: any) => c.state === 'ready');
    expect((await ask('GET', `/v1/clients/${ready.id}`)).body.transitions.length).toBeGreaterThan(0);
    expect((await ask('GET', '/v1/clients/0123456789abcdef0123')).status).toBe(404);
    expect((await ask('GET', '/v1/clients', { sign: false })).status).toBe(401);
    const other = all.clients.find((c: any) => c.id !== ready.id && c.instance !== null);
    expect((await ask('DELETE', `/v1/clients/${other.id}`)).status).toBe(202);
    expect((await ask('DELETE', '/v1/clients/0123456789abcdef0123')).status).toBe(404);
    await dispatcher.idle();
  });

  it('restore: queued for a device with a lease and a kept image; refused without either', async () => {
    const withContainer = (await store.listInstances())[0]!.clientId;
    expect((await ask('POST', `/v1/clients/${withContainer}/restore`)).status).toBe(404);
    await store.putKept({ image: `unionize-kept/${withContainer}:1`, imageId: 'e'.repeat(64), clientId: withContainer, agent: 'dock1', hostname: 'h', profile: 'p', sizeBytes: 10, createdAt: new Date().toISOString(), expiresAt: null });
    expect((await ask('POST', `/v1/clients/${withContainer}/restore`)).body).toEqual({ clientId: withContainer, image: `unionize-kept/${withContainer}:1`, queued: true });
    await dispatcher.idle();
    const gone = (await store.listClients()).find((c) => c.state === 'gone')!;
    await store.putKept({ image: `unionize-kept/${gone.id}:1`, imageId: 'f'.repeat(64), clientId: gone.id, agent: 'dock1', hostname: 'h', profile: 'p', sizeBytes: 10, createdAt: new Date().toISOString(), expiresAt: null });
    expect((await ask('POST', `/v1/clients/${gone.id}/restore`)).status).toBe(409);
    expect((await ask('POST', '/v1/clients/0123456789abcdef0123/restore')).status).toBe(404);
    for (const id of [withContainer, gone.id]) await store.deleteKept(`unionize-kept/${id}:1`);
  });

  it('shares: a link made, served once, then gone; what cannot be shared', async () => {
    const withContainer = (await store.listInstances())[0]!.clientId;
    const made = (await ask('POST', `/v1/clients/${withContainer}/shares`, { body: { seconds: 3600 } })).body;
    const link = new URL(made.url).pathname;
    expect((await ask('GET', link, { sign: false })).status).toBe(200);
    expect((await ask('GET', link, { sign: false })).status).toBe(410);
    expect((await ask('GET', `/shared/${'A'.repeat(43)}`, { sign: false })).status).toBe(404);
    expect((await ask('POST', '/v1/clients/0123456789abcdef0123/shares', { body: { seconds: 3600 } })).status).toBe(404);
    expect((await ask('POST', `/v1/clients/${withContainer}/shares`, { body: { seconds: 1 } })).status).toBe(400);
    expect((await ask('POST', `/v1/clients/${withContainer}/shares`, { body: { seconds: 3600 }, sign: false })).status).toBe(401);
  });

  it('whoami: the caller, and no one', async () => {
    expect((await ask('GET', '/v1/whoami', { from: 'fd00:1::1000', sign: false })).body.container).not.toBeNull();
    expect((await ask('GET', '/v1/whoami', { from: 'fd00:1::9', sign: false })).status).toBe(404);
  });

  it('leadership: one orchestrator alone leads nothing and follows no one', async () => {
    const view = (await ask('GET', '/v1/leadership')).body;
    expect(view).toMatchObject({ role: 'single', leader: null });
    expect((await ask('GET', '/v1/leadership', { sign: false })).status).toBe(401);
  });

  it('instances, events, servers', async () => {
    expect((await ask('GET', '/v1/instances')).body.instances.length).toBeGreaterThan(0);
    await store.putKept({ image: 'unionize-kept/c1:1', imageId: 'a'.repeat(64), clientId: 'c1', agent: 'dock1', hostname: 'h', profile: 'p', sizeBytes: 10, createdAt: new Date().toISOString(), expiresAt: null });
    expect((await ask('GET', '/v1/kept')).body.kept).toHaveLength(1);
    const events = (await ask('GET', '/v1/events?limit=10')).body.events;
    expect(events.some((e: any) => e.appliedAt !== null)).toBe(true);
    expect((await ask('GET', '/v1/events?limit=x')).status).toBe(400);
    expect((await ask('GET', '/v1/servers')).body.servers.length).toBe(1);
  });

  it('agents: before and after a health check, drained, and unknown', async () => {
    expect((await ask('GET', '/v1/agents')).body.agents[0].healthy).toBeNull();
    await monitor.checkAll();
    expect((await ask('GET', '/v1/agents')).body.agents[0].healthy).toBe(true);
    expect((await ask('POST', '/v1/agents/dock1/drain', { body: { drain: true, move: true } })).body.moving).toBeGreaterThan(0);
    await dispatcher.idle();
    expect((await ask('POST', '/v1/agents/dock1/drain', { body: { drain: false } })).status).toBe(202);
    expect((await ask('POST', '/v1/agents/nope/drain', { body: { drain: true } })).status).toBe(404);
  });

  it('bans: a device banned (its containers go), listed, lifted; what is not a MAC or DUID, and what is not banned', async () => {
    const { duid } = leaseEvent();
    const added = (await ask('POST', '/v1/bans', { body: { target: duid.toUpperCase(), seconds: 3600 } })).body;
    expect(added).toMatchObject({ ban: { target: duid, kind: 'duid', until: expect.any(String) }, removing: 1 });
    await dispatcher.idle();
    expect((await ask('POST', '/v1/bans', { body: { target: '52:54:00:00:00:01' } })).body.ban).toMatchObject({ kind: 'mac', until: null });
    expect((await ask('GET', '/v1/bans')).body.bans.map((b: any) => b.target)).toEqual([duid, '52:54:00:00:00:01']);
    expect((await ask('POST', '/v1/bans', { body: { target: 'nope' } })).status).toBe(400);
    expect((await ask('POST', '/v1/bans', { body: { target: duid, seconds: 0 } })).status).toBe(400);
    expect((await ask('DELETE', `/v1/bans/${duid}`)).body).toEqual({ target: duid, removed: true });
    expect((await ask('DELETE', `/v1/bans/${duid}`)).status).toBe(404);
    expect((await ask('DELETE', '/v1/bans/52:54:00:00:00:zz')).status).toBe(400);
    expect((await ask('GET', '/v1/bans', { sign: false })).status).toBe(401);
  });

  it('the document, and the off switches: metrics and the dashboard without their tokens', async () => {
    expect((await ask('GET', '/v1/openapi.json')).status).toBe(200);
    expect((await ask('GET', '/metrics')).status).toBe(404);
    expect((await ask('GET', '/dashboard')).status).toBe(404);
  });

  it('asked every route with a JSON answer for its success', () => {
    const wanted = ORCHESTRATOR_ROUTES.flatMap((r) =>
      Object.entries(r.responses)
        .filter(([status, response]) => Number(status) < 300 && response.schema)
        .map(([status]) => `${r.method.toUpperCase()} ${r.path} ${status}`),
    );
    expect(wanted.length).toBeGreaterThan(10);
    expect(wanted.filter((w) => !checked.has(w))).toEqual([]);
  });
});
