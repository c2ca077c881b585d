import { signedHeaders, testOrchestratorKeyring } from '@unionize/protocol/testing/keys';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { RequestVerifier } from '@unionize/protocol';
import { createApp } from '../api/app.js';
import { EventDispatcher } from '../events/dispatcher.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { AgentMonitor } from '../agents/agent-monitor.js';
import { Bans } from '../bans/bans.js';
import { agentHealthFrom } from '../metrics/agent-health.js';
import { SeriesSampler, chartSeriesSchema, storeCounts } from '../series/sampler.js';
import { MemoryStore } from '../store/memory-store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { chartAssets } from './assets.js';
import { DashboardAuth, SESSION_COOKIE } from './session.js';
import { StateHub, dashboardState } from './snapshot.js';

const token = 't'.repeat(48);

function setup(options: { dashboard?: boolean } = {}) {
  const log = pino({ level: 'silent' });
  const clock = { now: () => new Date() };
  const store = new MemoryStore({ prefix: 'fd00:3::/64' });
  const agents = [new FakeAgent('dock1')];
  const lifecycle = new Lifecycle({ store, agents, clock, log, image: 'img:1', prefixLength: 64 });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 2 });
  const agentHealth = agentHealthFrom(new AgentMonitor({ agents, settings: [{ name: 'dock1', url: 'https://dock1', capacity: 0, drain: false }], store, clock, log, deadAfterMs: 60_000, recorded: [] }));
  const sampler = new SeriesSampler({ clock, counts: storeCounts(store) });
  const bans = new Bans({ store, clock, log, recorded: [] });
  const hub = new StateHub(() => dashboardState({ store, agentHealth, clock, queueDepth: () => dispatcher.depth, series: () => sampler.series(), bans: () => bans.list() }), 20);
  const auth = options.dashboard === false ? undefined : new DashboardAuth({ token: Buffer.from(token) });
  const app = createApp({ store, dispatcher, lifecycle, agents, verifier: new RequestVerifier({ keys: testOrchestratorKeyring() }), log, agentHealth, dashboard: { hub, auth }, bans });
  return { app, dispatcher, hub, store };
}

async function login(app: ReturnType<typeof setup>['app'], given = token) {
  return app.request('/dashboard/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: given }).toString(),
  });
}

function leaseEvent(hostname: string) {
  const body = JSON.stringify({
    eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: '00:03:00:01:02:aa:bb:cc:dd:07', iaid: '1',
    address: 'fd00:1::1007', hostname, mac: '02:aa:bb:cc:dd:07', interface: 'brdev', expiresAt: null, seenAt: new Date().toISOString(),
  });
  return { method: 'POST', body, headers: { 'content-type': 'application/json', ...signedHeaders('POST', '/v1/lease-events', body) } };
}

describe('dashboard state', () => {
  it("says which orchestrator of a pair leads, and in which epoch; nothing alone", async () => {
    const { store } = setup();
    const clock = { now: () => new Date() };
    const agentHealth = { list: () => [] } as unknown as Parameters<typeof dashboardState>[0]['agentHealth'];
    const series = async () => ({}) as never;
    const paired = await dashboardState({ store, agentHealth, clock, queueDepth: () => 0, series, leader: () => ({ name: 'orch-b', epoch: 7 }) });
    expect(paired.leader).toEqual({ name: 'orch-b', epoch: 7 });
    expect((await dashboardState({ store, agentHealth, clock, queueDepth: () => 0, series })).leader).toBeNull();
  });
});

describe('dashboard', () => {
  it('shows the login form without a session, with a nonce CSP and no external asset', async () => {
    const res = await setup().app.request('/dashboard');
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('name="token"');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toMatch(/default-src 'none'/);
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1] ?? /style-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(html).toContain(`nonce="${nonce}"`);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('refuses a wrong token, and sets an HttpOnly, Secure, SameSite=Strict session for the right one', async () => {
    const { app } = setup();
    const wrong = await login(app, 'nope');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const right = await login(app);
    expect(right.status).toBe(303);
    expect(right.headers.get('location')).toBe('/dashboard');
    const cookie = right.headers.get('set-cookie')!;
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=`));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/Secure/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(token);
    const page = await app.request('/dashboard', { headers: { cookie: cookie.split(';')[0]! } });
    expect(await page.text()).toContain('id="device-rows"');
  });

  it('streams the state as server-sent events to a session only, and the next state when a device leases', async () => {
    const { app, dispatcher } = setup();
    expect((await app.request('/dashboard/events')).status).toBe(401);
    expect((await app.request('/dashboard/events', { headers: { cookie: `${SESSION_COOKIE}=1.2.3` } })).status).toBe(401);
    const cookie = (await login(app)).headers.get('set-cookie')!.split(';')[0]!;
    const controller = new AbortController();
    const res = await app.request('/dashboard/events', { headers: { cookie }, signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${needle}`);
        text += decoder.decode(value);
      }
    };
    await readUntil('"devices":[]');
    expect(text).toMatch(/^event: state\ndata: \{/);
    expect((await app.request('/v1/lease-events', leaseEvent('phone-7'))).status).toBe(202);
    await dispatcher.idle();
    await readUntil('"hostname":"phone-7"');
    controller.abort();
    await reader.cancel();
  });

  it('serves the chart library from node_modules to a session only, hashed, with SRI on the page and the CSP unchanged', async () => {
    const { app } = setup();
    const { script, style } = chartAssets();
    expect(script.name).toMatch(/^uplot-[0-9a-f]{16}\.js$/);
    expect((await app.request(`/dashboard/assets/${script.name}`)).status).toBe(401);
    const cookie = (await login(app)).headers.get('set-cookie')!.split(';')[0]!;
    const page = await app.request('/dashboard', { headers: { cookie } });
    const html = await page.text();
    const nonce = /script-src 'nonce-([^']+)'/.exec(page.headers.get('content-security-policy')!)![1];
    expect(page.headers.get('content-security-policy')).not.toMatch(/unsafe|https?:|\*/);
    expect(html).toContain(`<script nonce="${nonce}" src="/dashboard/assets/${script.name}" integrity="${script.integrity}"></script>`);
    expect(html).toContain(`<link rel="stylesheet" nonce="${nonce}" href="/dashboard/assets/${style.name}" integrity="${style.integrity}">`);
    expect(html).toMatch(/id="chart-fleet"[\s\S]*id="chart-latency"/);

    const js = await app.request(`/dashboard/assets/${script.name}`, { headers: { cookie } });
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await js.text()).toMatch(/uPlot/);
    const css = await app.request(`/dashboard/assets/${style.name}`, { headers: { cookie } });
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await css.text()).toContain('.uplot');
    const again = await app.request(`/dashboard/assets/${script.name}`, { headers: { cookie, 'if-none-match': js.headers.get('etag')! } });
    expect(again.status).toBe(304);
    expect((await app.request('/dashboard/assets/uplot.js', { headers: { cookie } })).status).toBe(404);
    expect((await app.request('/dashboard/assets/..%2Fpackage.json', { headers: { cookie } })).status).toBe(404);
  });

  it('lists the banned devices in the state, and has a place for them on the page', async () => {
    const { app, hub } = setup();
    const body = JSON.stringify({ target: '52:54:00:12:34:56', seconds: 60 });
    const ban = await app.request('/v1/bans', { method: 'POST', body, headers: { 'content-type': 'application/json', ...signedHeaders('POST', '/v1/bans', body) } });
    expect(ban.status).toBe(201);
    let state: any;
    (await hub.subscribe((json) => (state = JSON.parse(json))))();
    expect(state.bans).toEqual([{ target: '52:54:00:12:34:56', kind: 'mac', until: expect.any(String) }]);
    const cookie = (await login(app)).headers.get('set-cookie')!.split(';')[0]!;
    expect(await (await app.request('/dashboard', { headers: { cookie } })).text()).toContain('id="ban-list"');
  });

  it('lists the kept images, newest first, and has a place for them on the page', async () => {
    const { app, hub, store } = setup();
    for (const [n, at] of [[1, '2026-01-01T00:00:00.000Z'], [2, '2026-01-02T00:00:00.000Z']] as const) {
      await store.putKept({ image: `unionize-kept/c${n}:1`, imageId: String(n).repeat(64), clientId: `c${n}`, agent: 'dock1', hostname: `visitor-${n}`, profile: 'visitor', sizeBytes: n * 1048576, createdAt: at, expiresAt: null });
    }
    let state: any;
    (await hub.subscribe((json) => (state = JSON.parse(json))))();
    expect(state.kept.map((k: { hostname: string }) => k.hostname)).toEqual(['visitor-2', 'visitor-1']);
    expect(state.kept[0]).toMatchObject({ clientId: 'c2', profile: 'visitor', agent: 'dock1', sizeBytes: 2 * 1048576, expiresAt: null });
    const cookie = (await login(app)).headers.get('set-cookie')!.split(';')[0]!;
    expect(await (await app.request('/dashboard', { headers: { cookie } })).text()).toContain('id="kept-list"');
  });

  it('sends the last hour per minute for the charts in the state, as the schema says', async () => {
    const { app, hub } = setup();
    expect(app).toBeDefined();
    let state: { series: unknown; counts: Record<string, number> } | undefined;
    const unsubscribe = await hub.subscribe((json) => (state = JSON.parse(json)));
    unsubscribe();
    const series = chartSeriesSchema.parse(state!.series);
    expect(series.t).toHaveLength(60);
    expect([series.devices.at(-1), series.containers.at(-1)]).toEqual([0, 0]);
  });

  it('answers 404 everywhere when no token file is configured', async () => {
    const { app } = setup({ dashboard: false });
    expect((await app.request('/dashboard')).status).toBe(404);
    expect((await login(app)).status).toBe(404);
  });
});

describe('DashboardAuth', () => {
  it('accepts its own sessions until they expire, and refuses forged or other tokens\' ones', () => {
    let now = 1_000_000_000_000;
    const auth = new DashboardAuth({ token: Buffer.from(token), ttlSeconds: 60, now: () => now });
    const other = new DashboardAuth({ token: Buffer.from('x'.repeat(48)), now: () => now });
    const session = auth.newSession();
    expect(auth.checkSession(session)).toBe(true);
    expect(other.checkSession(session)).toBe(false);
    const [expiry, nonce, mac] = session.split('.');
    expect(auth.checkSession(`${Number(expiry) + 1000}.${nonce}.${mac}`)).toBe(false);
    expect(auth.checkSession(undefined)).toBe(false);
    now += 61_000;
    expect(auth.checkSession(session)).toBe(false);
    expect(auth.checkToken(` ${token}\n`)).toBe(true);
    expect(auth.checkToken(token.slice(1))).toBe(false);
  });
});
