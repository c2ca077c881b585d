import { TEST_HOOK_KEY, TEST_OPERATOR_KEY, signedHeaders, testOrchestratorKeyring } from '@unionize/protocol/testing/keys';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { RequestVerifier, type LeaseEvent, type SigningKey } from '@unionize/protocol';
import { FakeAgent } from '../testing/fake-agent.js';
import { EventDispatcher } from '../events/dispatcher.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { MemoryStore } from '../store/memory-store.js';
import { createApp } from './app.js';
import { leaseEventFixture } from '@unionize/protocol/testing/lease-event';
import { sequentialPoolOffsets } from '../store/ipv6.js';


function setup() {
  const log = pino({ level: 'silent' });
  const clock = { now: () => new Date() };
  const store = new MemoryStore({ prefix: 'fd00:3::/64', drawOffset: sequentialPoolOffsets() });
  const agents = [new FakeAgent('dock1'), new FakeAgent('dock2')];
  const lifecycle = new Lifecycle({ store, agents, clock, log, image: 'img:1', prefixLength: 64 });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 4, retryBaseMs: 5, retryMaxMs: 20 });
  const app = createApp({ store, dispatcher, lifecycle, agents, verifier: new RequestVerifier({ keys: testOrchestratorKeyring() }), log });
  return { store, agents, dispatcher, app };
}

function event(overrides: Partial<LeaseEvent> = {}): LeaseEvent {
  return leaseEventFixture({ ...overrides });
}

function signed(method: string, path: string, body = '', key?: SigningKey) {
  return { method, body: body || undefined, headers: { 'content-type': 'application/json', ...signedHeaders(method, path, body, key ? { key } : {}) } };
}

describe('orchestrator API', () => {
  let t: ReturnType<typeof setup>;
  beforeEach(() => {
    t = setup();
  });

  const post = (e: unknown) => t.app.request('/v1/lease-events', signed('POST', '/v1/lease-events', JSON.stringify(e)));
  const get = async (path: string) => (await t.app.request(path, signed('GET', path))).json() as Promise<any>;

  it("lets each peer's key call what that peer may, and nothing else (403)", async () => {
    const body = JSON.stringify(event());
    const asOperator = await t.app.request('/v1/lease-events', signed('POST', '/v1/lease-events', body, TEST_OPERATOR_KEY));
    expect(asOperator.status).toBe(403);
    expect(await asOperator.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'key operator-test (operator) may not POST /v1/lease-events' } });
    for (const [method, path] of [['GET', '/v1/clients'], ['GET', '/v1/events'], ['DELETE', '/v1/clients/0123456789abcdef0123'], ['POST', '/v1/agents/dock1/drain']]) {
      const asHook = await t.app.request(path!, signed(method!, path!, method === 'POST' ? '{"drain":true}' : '', TEST_HOOK_KEY));
      expect(asHook.status, `${method} ${path}`).toBe(403);
    }
    // Other spellings of the lease events' route reach no handler, signed by whichever key, or signed not at all.
    for (const path of ['/v1/lease%2Devents', '/v1/%6Cease-events', '//v1/lease-events', '/v1//lease-events', '/v1/./lease-events', '/V1/lease-events', '/v1/lease-events/']) {
      for (const key of [TEST_OPERATOR_KEY, TEST_HOOK_KEY]) {
        const status = (await t.app.request(path, signed('POST', path, body, key))).status;
        expect(status, `${path} signed by ${key.id}`).not.toBe(202);
      }
      const unsigned = (await t.app.request(path, { method: 'POST', body, headers: { 'content-type': 'application/json' } })).status;
      expect(unsigned, `${path} unsigned`).not.toBe(202);
    }
    expect(await t.store.listClients()).toEqual([]);
    expect((await t.app.request('/v1/lease-events', signed('POST', '/v1/lease-events', body, TEST_HOOK_KEY))).status).toBe(202);
    expect((await t.app.request('/v1/clients', signed('GET', '/v1/clients', '', TEST_OPERATOR_KEY))).status).toBe(200);
  });

  it('answers 202, then provisions the client; a release removes its container', async () => {
    const add = event();
    const res = await post(add);
    expect(res.status).toBe(202);
    const body = (await res.json()) as { clientId: string; duplicate: boolean };
    expect(body.duplicate).toBe(false);
    await t.dispatcher.idle();
    const client = await get(`/v1/clients/${body.clientId}`);
    expect(client).toMatchObject({ state: 'ready', duid: add.duid, instance: { address: 'fd00:3::100/64', agent: 'dock1' } });
    expect(t.agents[0]!.containers.size).toBe(1);
    const view = [...t.agents[0]!.containers.values()][0]!;
    expect(view.labels['io.unionize.duid']).toBe(add.duid);
    expect(view.mac).toMatch(/^02:/);

    expect((await post(event({ action: 'del' }))).status).toBe(202);
    await t.dispatcher.idle();
    expect(await get(`/v1/clients/${body.clientId}`)).toMatchObject({ state: 'gone', instance: null });
    expect(t.agents[0]!.containers.size).toBe(0);
  });

  it('pages through clients in id order', async () => {
    await post(event());
    await post(event({ duid: '00:03:00:01:02:aa:bb:cc:dd:02' }));
    await post(event({ duid: '00:03:00:01:02:aa:bb:cc:dd:03' }));
    await t.dispatcher.idle();
    const all = (await get('/v1/clients')).clients.map((c: { id: string }) => c.id).sort();
    const first = await get('/v1/clients?limit=2');
    expect(first.clients.map((c: { id: string }) => c.id)).toEqual(all.slice(0, 2));
    const second = await get(`/v1/clients?limit=2&after=${first.next}`);
    expect(second).toMatchObject({ clients: [{ id: all[2] }], next: null });
    const bad = await t.app.request('/v1/clients?limit=0', signed('GET', '/v1/clients?limit=0'));
    expect(bad.status).toBe(400);
  });

  it('drains an agent on request, moving its clients when asked', async () => {
    const draining = new Set<string>();
    const control = { setDraining: async (name: string, on: boolean) => (['dock1', 'dock2'].includes(name) ? (on ? draining.add(name) : draining.delete(name), true) : false) };
    const placement = { candidates: () => t.agents.filter((a) => !draining.has(a.name)), capacity: () => 0, isDead: () => false };
    const log = pino({ level: 'silent' });
    const clock = { now: () => new Date() };
    const lifecycle = new Lifecycle({ store: t.store, agents: t.agents, clock, log, image: 'img:1', prefixLength: 64, placement });
    const dispatcher = new EventDispatcher({ store: t.store, lifecycle, clock, log, concurrency: 4 });
    const app = createApp({ store: t.store, dispatcher, lifecycle, agents: t.agents, verifier: new RequestVerifier({ keys: testOrchestratorKeyring() }), log, agentControl: control });
    const call = (path: string, body: unknown) => app.request(path, signed('POST', path, JSON.stringify(body)));
    await dispatcher.accept(event());
    await dispatcher.idle();
    expect(t.agents[0]!.containers.size).toBe(1);
    const res = await call('/v1/agents/dock1/drain', { drain: true, move: true });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ agent: 'dock1', draining: true, moving: 1 });
    await dispatcher.idle();
    expect([t.agents[0]!.containers.size, t.agents[1]!.containers.size]).toEqual([0, 1]);
    expect((await call('/v1/agents/nope/drain', { drain: true })).status).toBe(404);
    expect((await call('/v1/agents/dock1/drain', { drain: 'yes' })).status).toBe(400);
  });

  it('is idempotent by eventId and by state', async () => {
    const add = event();
    await post(add);
    expect(await (await post(add)).json()).toMatchObject({ duplicate: true });
    await post(event({ action: 'old' }));
    await t.dispatcher.idle();
    const { instances } = await get('/v1/instances');
    expect(instances).toHaveLength(1);
  });

  it('spreads two devices over the least-loaded agents with different addresses', async () => {
    await post(event());
    await post(event({ duid: '00:03:00:01:02:aa:bb:cc:dd:02' }));
    await t.dispatcher.idle();
    const { instances } = await get('/v1/instances');
    expect(instances.map((i: { address: string }) => i.address).sort()).toEqual(['fd00:3::100/64', 'fd00:3::101/64']);
    expect(new Set(instances.map((i: { agent: string }) => i.agent)).size).toBe(2);
  });

  it('retries a failed provisioning with backoff until it succeeds', async () => {
    t.agents[0]!.failNext = 2;
    const res = await post(event());
    const { clientId } = (await res.json()) as { clientId: string };
    await t.dispatcher.idle();
    expect((await get(`/v1/clients/${clientId}`)).state).toBe('failed');
    for (let i = 0; i < 50 && (await get(`/v1/clients/${clientId}`)).state !== 'ready'; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await get(`/v1/clients/${clientId}`)).state).toBe('ready');
  });

  it('refuses unsigned and wrongly signed requests with 401 and changes nothing', async () => {
    const body = JSON.stringify(event());
    const unsigned = await t.app.request('/v1/lease-events', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toEqual({ error: { code: 'UNAUTHENTICATED', message: 'request is not signed' } });
    const wrong = signed('POST', '/v1/lease-events', body.replace('laptop', 'mallory'));
    const forged = await t.app.request('/v1/lease-events', { ...wrong, body });
    expect(forged.status).toBe(401);
    expect((await t.app.request('/v1/clients')).status).toBe(401);
    await t.dispatcher.idle();
    expect(await t.store.listClients()).toEqual([]);
    expect(await t.store.recentEvents(10)).toEqual([]);
  });

  it('refuses invalid events with 400 naming the field', async () => {
    const res = await post({ ...event(), duid: '$(reboot)' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'INVALID_REQUEST', message: expect.stringContaining('duid') } });
    const notJson = await t.app.request('/v1/lease-events', signed('POST', '/v1/lease-events', '{nope'));
    expect(notJson.status).toBe(400);
  });

  it('serves healthz without a signature and a JSON 404 elsewhere', async () => {
    expect((await t.app.request('/healthz')).status).toBe(200);
    const res = await t.app.request('/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  describe('GET /v1/whoami (unsigned, by source address)', () => {
    const from = (remoteAddress: string, path = '/v1/whoami') =>
      t.app.request(path, {}, { incoming: { socket: { remoteAddress } } });

    it("shows a caller only its own client and container", async () => {
      await post(event({ address: 'fd00:1::1000', hostname: 'mine' }));
      await post(event({ duid: '00:03:00:01:02:aa:bb:cc:dd:02', address: 'fd00:1::1001', hostname: 'theirs' }));
      await t.dispatcher.idle();
      const res = await from('fd00:1:0:0:0:0:0:1000');
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toEqual({
        client: { address: 'fd00:1::1000', hostname: 'mine', state: 'ready', expiresAt: null },
        container: { name: expect.stringMatching(/^dev-[0-9a-f]{12}$/), address: 'fd00:3::100/64' },
      });
      expect(JSON.stringify(body)).not.toMatch(/theirs|duid|00:03:00/);
    });

    it('answers a JSON 404 to an address with no lease, an IPv4 (mapped) caller, and a released client', async () => {
      await post(event({ address: 'fd00:1::1000' }));
      await t.dispatcher.idle();
      for (const address of ['fd00:1::1001', '::ffff:192.0.2.1', '192.0.2.1', 'garbage']) {
        const res = await from(address);
        expect(res.status).toBe(404);
        expect(await res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
      }
      expect((await t.app.request('/v1/whoami')).status).toBe(404);
      await post(event({ action: 'del', address: 'fd00:1::1000' }));
      await t.dispatcher.idle();
      expect((await from('fd00:1::1000')).status).toBe(404);
    });

    it('ignores headers that claim another source', async () => {
      await post(event({ address: 'fd00:1::1000' }));
      await t.dispatcher.idle();
      const res = await t.app.request(
        '/v1/whoami',
        { headers: { 'x-forwarded-for': 'fd00:1::1000', 'x-real-ip': 'fd00:1::1000', forwarded: 'for="[fd00:1::1000]"' } },
        { incoming: { socket: { remoteAddress: 'fd00:1::9' } } },
      );
      expect(res.status).toBe(404);
    });

    it('refuses query parameters', async () => {
      expect((await from('fd00:1::1000', '/v1/whoami?all=1')).status).toBe(400);
    });
  });

  it('checks query strings strictly: limit is 1..1000, unknown parameters are refused', async () => {
    const status = async (path: string) => (await t.app.request(path, signed('GET', path))).status;
    expect(await status('/v1/events?limit=5')).toBe(200);
    for (const path of ['/v1/events?limit=0', '/v1/events?limit=1001', '/v1/events?limit=abc', '/v1/events?limit=1e3', '/v1/events?x=1', '/v1/clients?state=ready']) {
      expect(await status(path), path).toBe(400);
    }
  });

  it('refuses a body over the limit with 413 before checking the signature', async () => {
    const body = 'x'.repeat(65 * 1024);
    const res = await t.app.request('/v1/lease-events', signed('POST', '/v1/lease-events', body));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: 'BODY_TOO_LARGE' } });
  });
});

describe('GET /v1/clients/:id/export', () => {
  it('streams the live container from its agent, else the newest kept image; 404 for neither; 503 naming an unreachable agent', async () => {
    const t = setup();
    const request = (path: string) => t.app.request(path, signed('GET', path));
    const e = event();
    await t.app.request('/v1/lease-events', signed('POST', '/v1/lease-events', JSON.stringify(e)));
    await t.dispatcher.idle();
    const [client] = await t.store.listClients();
    const instance = (await t.store.getInstance(client!.id))!;
    const agent = t.agents.find((a) => a.name === instance.agent)!;
    const path = `/v1/clients/${client!.id}/export`;

    const live = await request(path);
    expect(live.status).toBe(200);
    expect(live.headers.get('content-type')).toBe('application/gzip');
    expect(live.headers.get('content-disposition')).toBe(`attachment; filename="${client!.id}-live.tar.gz"`);
    expect(await live.text()).toBe(`container ${instance.containerName}`);

    // Gone, with two kept images: the newest is exported; another client's never.
    await t.store.deleteInstance(client!.id);
    const kept = (image: string, imageId: string, createdAt: string, clientId = client!.id) =>
      t.store.putKept({ image, imageId, clientId, agent: agent.name, hostname: '', profile: 'p', sizeBytes: 1, createdAt, expiresAt: null });
    for (const [id, at] of [['a', '2026-01-01T00:00:00.000Z'], ['b', '2026-01-02T00:00:00.000Z'], ['c', '2026-01-03T00:00:00.000Z']] as const) {
      agent.kept.set(id.repeat(64), { image: `x:${id}`, id: id.repeat(64), client: '', hostname: '', profile: '', sizeBytes: 1, createdAt: at });
    }
    await kept(`unionize-kept/${client!.id}:1`, 'a'.repeat(64), '2026-01-01T00:00:00.000Z');
    await kept(`unionize-kept/${client!.id}:2`, 'b'.repeat(64), '2026-01-02T00:00:00.000Z');
    await kept('unionize-kept/ffffffffffffffffffff:3', 'c'.repeat(64), '2026-01-03T00:00:00.000Z', 'ffffffffffffffffffff');
    const newest = await request(path);
    expect(newest.headers.get('content-disposition')).toBe(`attachment; filename="${client!.id}-2.tar.gz"`);
    expect(await newest.text()).toBe(`kept ${'b'.repeat(64)}`);

    agent.down = true;
    const down = await request(path);
    expect(down.status).toBe(503);
    expect(((await down.json()) as any).error).toMatchObject({ code: 'AGENT_UNREACHABLE', message: expect.stringContaining(`is on agent ${agent.name}, which cannot be reached`) });

    for (const other of ['0123456789abcdef0123', 'not-an-id']) {
      const none = await request(`/v1/clients/${other}/export`);
      expect(none.status).toBe(404);
    }
  });
});
