import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { pino } from 'pino';
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { RequestVerifier, shareCreatedSchema } from '@unionize/protocol';
import { leaseEventFixture } from '@unionize/protocol/testing/lease-event';
import { signedHeaders, testOrchestratorKeyring } from '@unionize/protocol/testing/keys';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { createApp } from '../api/app.js';
import { EventDispatcher } from '../events/dispatcher.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { MemoryStore } from '../store/memory-store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { Shares } from './shares.js';

function setup(options: { maxBytes?: number } = {}) {
  const log = pino({ level: 'silent' });
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock = { now: () => new Date(now) };
  const store = new MemoryStore({ prefix: 'fd00:3::/64' });
  const agents = [new FakeAgent('dock1')];
  const lifecycle = new Lifecycle({ store, agents, clock, log, image: 'img:1', prefixLength: 64 });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 4 });
  const dir = makeTempDir('shares-');
  const shares = new Shares({ store, agents, clock, log, dir, maxSeconds: 30 * 86_400, maxBytes: options.maxBytes ?? 1024 * 1024 });
  const app = createApp({ store, dispatcher, lifecycle, agents, verifier: new RequestVerifier({ keys: testOrchestratorKeyring() }), log, shares });
  const signed = (method: string, path: string, body = '') => ({ method, body: body || undefined, headers: { 'content-type': 'application/json', ...signedHeaders(method, path, body) } });
  const share = async (clientId: string, seconds: number) => {
    const path = `/v1/clients/${clientId}/shares`;
    return app.request(path, signed('POST', path, JSON.stringify({ seconds })));
  };
  /** A device with a container. */
  const device = async () => {
    await app.request('/v1/lease-events', signed('POST', '/v1/lease-events', JSON.stringify(leaseEventFixture())));
    await dispatcher.idle();
    return (await store.listClients())[0]!.id;
  };
  return { store, agents, app, dir, shares, share, device, advance: (ms: number) => (now += ms) };
}

describe('share links', () => {
  it('serves the export once, with its type and length, to whoever has the link; the token is stored only hashed', async () => {
    const t = setup();
    const id = await t.device();
    const made = await t.share(id, 7 * 86_400);
    expect(made.status).toBe(201);
    const created = shareCreatedSchema.parse(await made.json());
    expect(created).toMatchObject({ clientId: id, filename: `${id}-live.tar.gz`, expiresAt: '2026-01-08T00:00:00.000Z' });
    const url = new URL(created.url);
    expect(url.pathname).toMatch(/^\/shared\/[A-Za-z0-9_-]{43}$/);
    const token = url.pathname.split('/').at(-1)!;
    const [stored] = await t.store.listShares();
    expect(stored!.tokenHash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(await t.store.listShares())).not.toContain(token);

    // Unsigned: the link is the only right to it.
    const first = await t.app.request(url.pathname);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('application/gzip');
    const bytes = Buffer.from(await first.arrayBuffer());
    expect(first.headers.get('content-length')).toBe(String(bytes.length));
    expect(bytes.toString()).toMatch(/^container dev-/);
    expect(created.sizeBytes).toBe(bytes.length);
    // Used: the second try gets 410, and the file went.
    await new Promise((resolve) => setImmediate(resolve));
    const second = await t.app.request(url.pathname);
    expect(second.status).toBe(410);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('SHARE_USED');
    expect(readdirSync(t.dir)).toEqual([]);
    // The minute's clean-up keeps a used link until its time is up: it still says why it serves nothing.
    expect(await t.shares.expire()).toBe(0);
    expect((await t.app.request(url.pathname)).status).toBe(410);
    t.advance(7 * 86_400 * 1000);
    expect(await t.shares.expire()).toBe(1);
    expect((await t.app.request(url.pathname)).status).toBe(404);
    // Not a link, or a link never made.
    for (const path of ['/shared/short', `/shared/${'A'.repeat(43)}`]) expect((await t.app.request(path)).status).toBe(404);
  });

  it('the clean-up leaves an export being spooled alone, and the link works once it is whole', async () => {
    const t = setup();
    const id = await t.device();
    const slow = new PassThrough();
    t.agents[0]!.exportImage = async () => slow;
    const made = t.share(id, 3600);
    slow.write('first half ');
    await vi.waitFor(() => expect(readdirSync(t.dir).some((n) => n.endsWith('.part'))).toBe(true));
    await t.shares.expire();
    expect(readdirSync(t.dir).some((n) => n.endsWith('.part'))).toBe(true);
    slow.end('second half');
    const created = shareCreatedSchema.parse(await (await made).json());
    await t.shares.expire();
    const download = await t.app.request(new URL(created.url).pathname);
    expect(await download.text()).toBe('first half second half');
  });

  it('refuses an expired link, and expire() removes it with its file', async () => {
    const t = setup();
    const id = await t.device();
    const created = shareCreatedSchema.parse(await (await t.share(id, 3600)).json());
    expect(readdirSync(t.dir)).toHaveLength(1);
    expect(await t.shares.expire()).toBe(0);
    t.advance(3600 * 1000);
    const late = await t.app.request(new URL(created.url).pathname);
    expect(late.status).toBe(410);
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe('SHARE_EXPIRED');
    expect(await t.shares.expire()).toBe(1);
    expect(readdirSync(t.dir)).toEqual([]);
    expect(await t.store.listShares()).toEqual([]);
  });

  it('needs an operator signature to make one, refuses what it cannot make, and keeps the spool under max_mb', async () => {
    const t = setup({ maxBytes: 40 });
    const id = await t.device();
    const path = `/v1/clients/${id}/shares`;
    expect((await t.app.request(path, { method: 'POST', body: '{"seconds":3600}', headers: { 'content-type': 'application/json' } })).status).toBe(401);
    expect((await t.share(id, 59)).status).toBe(400);
    expect((await t.share(id, 31 * 86_400)).status).toBe(400);
    expect((await t.share('0123456789abcdef0123', 3600)).status).toBe(404);
    // 40 bytes of spool: the first export (about 30) fits, the second does not, and leaves no partial file.
    expect((await t.share(id, 3600)).status).toBe(201);
    const full = await t.share(id, 3600);
    expect(full.status).toBe(507);
    expect(readdirSync(t.dir)).toHaveLength(1);
    expect(readFileSync(`${t.dir}/${readdirSync(t.dir)[0]}`, 'utf8')).toMatch(/^container dev-/);
  });
});
