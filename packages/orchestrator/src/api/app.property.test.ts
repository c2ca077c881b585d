import { signedHeaders, testOrchestratorKeyring } from '@unionize/protocol/testing/keys';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { RequestVerifier, SIGNATURE_HEADERS, leaseEventSchema } from '@unionize/protocol';
import { EventDispatcher } from '../events/dispatcher.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { MemoryStore } from '../store/memory-store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { createApp } from './app.js';

/**
 * Fuzzing the orchestrator's HTTP API through app.request: random methods,
 * paths, headers and bodies, unsigned, wrongly signed, or signed over a body
 * that is not a valid event. Every answer is a 4xx with a JSON error, never
 * a 5xx, and nothing reaches the store or the agents.
 */
const now = Date.parse('2026-01-01T00:00:00Z');

function setup() {
  const log = pino({ level: 'silent' });
  const clock = { now: () => new Date(now) };
  const store = new MemoryStore({ prefix: 'fd00:3::/64' });
  const agent = new FakeAgent('dock1');
  const lifecycle = new Lifecycle({ store, agents: [agent], clock, log, image: 'img', prefixLength: 64 });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 2 });
  const app = createApp({ store, dispatcher, lifecycle, agents: [agent], verifier: new RequestVerifier({ keys: testOrchestratorKeyring(), now: () => now }), log });
  return { store, agent, dispatcher, app };
}

const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 40 }));
const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS');
const path = fc.oneof(
  fc.constantFrom('/v1/lease-events', '/v1/clients', '/v1/events', '/v1/instances', '/v1/agents', '/v1/servers', '/v1/whoami', '/v1/clients/0123456789abcdef0123'),
  fc.webPath().map((p) => `/v1${p.startsWith('/') ? p : `/${p}`}`),
  fc.tuple(fc.constantFrom('/v1/events', '/v1/clients', '/v1/whoami'), fc.webQueryParameters()).map(([p, q]) => `${p}?${q}`),
  fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
).filter((p) => !/^\/(healthz|readyz)\/?(\?|$)/.test(p));
const headerName = fc.oneof(fc.constantFrom(...Object.values(SIGNATURE_HEADERS), 'content-type', 'content-length', 'x-forwarded-for'), fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/));
const headers = fc.dictionary(headerName, fc.stringMatching(/^[\x20-\x7e]{0,80}$/), { maxKeys: 6 });

/** JSON that looks like an event, with fields broken at random. */
const eventish = fc.record(
  {
    eventId: fc.oneof(fc.uuid(), text),
    server: fc.oneof(fc.constant('devnet'), text),
    role: fc.oneof(fc.constantFrom('device', 'instance'), text),
    action: fc.oneof(fc.constantFrom('add', 'old', 'del'), text),
    duid: fc.oneof(fc.constant('00:03:00:01:02:aa:bb:cc:dd:01'), text),
    iaid: fc.oneof(fc.constant('1'), text, fc.integer()),
    address: fc.oneof(fc.ipV6(), fc.ipV4(), text),
    hostname: fc.oneof(fc.constant(null), fc.constantFrom('$(touch /tmp/pwned)', ';reboot', '../../etc', 'x'.repeat(300), 'ünï'), text),
    mac: fc.oneof(fc.constant(null), text),
    interface: fc.oneof(fc.constant(null), text),
    expiresAt: fc.oneof(fc.constant(null), text),
    seenAt: fc.oneof(fc.constant(new Date(now).toISOString()), text),
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(text, fc.json(), eventish.map((e) => JSON.stringify(e)), fc.constant(''));

async function expectRefused(res: Response, what: string) {
  expect(res.status, what).toBeGreaterThanOrEqual(400);
  expect(res.status, what).toBeLessThan(500);
  const json = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  expect(typeof json.error?.code, what).toBe('string');
  expect(typeof json.error?.message, what).toBe('string');
}

async function expectUntouched(t: ReturnType<typeof setup>) {
  expect(await t.store.listClients()).toEqual([]);
  expect(await t.store.recentEvents(10)).toEqual([]);
  expect(await t.store.listInstances()).toEqual([]);
  expect(t.agent.creates).toBe(0);
}

describe('orchestrator API under random requests', () => {
  it('refuses random unsigned or wrongly signed requests with a 4xx JSON error', async () => {
    const t = setup();
    await fc.assert(
      fc.asyncProperty(method, path, headers, body, async (m, p, h, b) => {
        const init: RequestInit = { method: m, headers: h };
        if (m !== 'GET' && m !== 'HEAD' && b) init.body = b;
        let res: Response;
        try {
          res = await t.app.request(p, init);
        } catch (error) {
          // The Request constructor itself refused it (a header value undici will not send): never reached us.
          if (error instanceof TypeError) return;
          throw error;
        }
        await expectRefused(res, `${m} ${p}`);
      }),
      { numRuns: 1500 },
    );
    await t.dispatcher.idle();
    await expectUntouched(t);
  });

  it('refuses signed requests whose body is not a valid lease event with a 400', async () => {
    const t = setup();
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        let valid = false;
        try {
          valid = leaseEventSchema.safeParse(JSON.parse(b)).success;
        } catch {
          /* not JSON */
        }
        fc.pre(!valid);
        const res = await t.app.request('/v1/lease-events', {
          method: 'POST',
          body: b,
          headers: { 'content-type': 'application/json', ...signedHeaders('POST', '/v1/lease-events', b, { now }) },
        });
        await expectRefused(res, b);
        expect(res.status).toBe(400);
      }),
      { numRuns: 1500 },
    );
    await t.dispatcher.idle();
    await expectUntouched(t);
  });

  it('refuses a replay of a request it accepted, with 401', async () => {
    const t = setup();
    const event = {
      eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: '00:03:00:01:02:aa:bb:cc:dd:01', iaid: '1',
      address: 'fd00:1::1000', hostname: null, mac: null, interface: null, expiresAt: null, seenAt: new Date(now).toISOString(),
    };
    const b = JSON.stringify(event);
    const init = { method: 'POST', body: b, headers: { 'content-type': 'application/json', ...signedHeaders('POST', '/v1/lease-events', b, { now }) } };
    expect((await t.app.request('/v1/lease-events', init)).status).toBe(202);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 3 }), async () => {
        const res = await t.app.request('/v1/lease-events', init);
        await expectRefused(res, 'replay');
        expect(res.status).toBe(401);
      }),
      { numRuns: 20 },
    );
    await t.dispatcher.idle();
    expect(await t.store.recentEvents(10)).toHaveLength(1);
  });
});
