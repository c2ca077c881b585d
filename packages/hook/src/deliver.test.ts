import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { Keyring, RequestVerifier, certificatePin, fixedKeys, hmacAuth, leaseEventSchema, listenHttps, parsePin, type LeaseEvent } from '@unionize/protocol';
import { makeTestCerts } from '@unionize/protocol/testing/certs';
import { testKey } from '@unionize/protocol/testing/keys';
import { leaseEventFixture } from '@unionize/protocol/testing/lease-event';
import type { ServerType } from '@hono/node-server';
import { failoverDelivery, keptAliveDelivery, type DeliveryTarget } from './deliver.js';

/** One event over a connection of its own. */
async function deliverEvent(event: LeaseEvent, target: DeliveryTarget & { timeoutMs: number }) {
  const delivery = keptAliveDelivery(target, target.timeoutMs);
  try {
    return await delivery.deliver(event, { timeoutMs: target.timeoutMs, spoolDepth: 0 });
  } finally {
    delivery.close();
  }
}

/** The hook against a real HTTPS server (its certificate from a throwaway CA) verifying HMAC. */
// ca.crt, srv.crt and srv.key.
const { dir } = makeTestCerts('hook');

const key = testKey('hook-1', 'k');
const received: LeaseEvent[] = [];
let server: ServerType;
let url: string;
let failWith = 0;

beforeAll(async () => {
  const app = new Hono();
  app.use('*', hmacAuth({ verifier: new RequestVerifier({ keys: new Keyring({ hook: fixedKeys([key]) }) }) }));
  app.post('/v1/lease-events', async (c) => {
    if (failWith) return c.json({ error: { code: 'X', message: 'x' } }, failWith as 503);
    received.push(leaseEventSchema.parse(await c.req.json()));
    return c.json({ ok: true }, 202);
  });
  const listening = await listenHttps({ fetch: app.fetch, host: '127.0.0.1', port: 0, certFile: join(dir, 'srv.crt'), keyFile: join(dir, 'srv.key') });
  server = listening.server;
  url = `https://localhost:${listening.port}`;
});

afterAll(() => {
  server?.close();
});

const event: LeaseEvent = leaseEventFixture({ eventId: '6f9619ff-8b86-4d01-b42d-00cf4fc964ff', hostname: null, mac: null, interface: null });

describe('deliverEvent', () => {
  it('posts a signed event over TLS verified by the CA', async () => {
    const result = await deliverEvent(event, { url, ca: readFileSync(join(dir, 'ca.crt')), key, timeoutMs: 3000 });
    expect(result).toEqual({ ok: true, status: 202 });
    expect(received).toEqual([event]);
  });

  it('is refused (401) with the wrong key, and keeps the event for a retry once the key is fixed', async () => {
    const result = await deliverEvent(event, { url, ca: readFileSync(join(dir, 'ca.crt')), key: testKey('hook-1', 'w'), timeoutMs: 3000 });
    expect(result).toMatchObject({ ok: false, retryable: true, status: 401 });
  });

  it('reports a 5xx as retryable', async () => {
    failWith = 503;
    const result = await deliverEvent(event, { url, ca: readFileSync(join(dir, 'ca.crt')), key, timeoutMs: 3000 });
    failWith = 0;
    expect(result).toMatchObject({ ok: false, retryable: true, status: 503 });
  });

  it('refuses a server whose certificate the CA did not sign', async () => {
    const result = await deliverEvent(event, { url, ca: readFileSync(join(dir, 'srv.crt')), key, timeoutMs: 3000 });
    expect(result).toMatchObject({ ok: false, retryable: true });
  });

  it('delivers to a server matching its certificate pin, with or without a CA, and to no other', async () => {
    const pin = parsePin(certificatePin(readFileSync(join(dir, 'srv.crt'))));
    const before = received.length;
    expect(await deliverEvent(event, { url, pin, key, timeoutMs: 3000 })).toEqual({ ok: true, status: 202 });
    expect(await deliverEvent(event, { url, ca: readFileSync(join(dir, 'ca.crt')), pin, key, timeoutMs: 3000 })).toEqual({ ok: true, status: 202 });
    const wrong = Buffer.alloc(32, 7);
    const refused = await deliverEvent(event, { url, pin: wrong, key, timeoutMs: 3000 });
    expect(refused).toMatchObject({ ok: false, retryable: true, reason: expect.stringMatching(/does not match the pin/) });
    expect(await deliverEvent(event, { url, ca: readFileSync(join(dir, 'ca.crt')), pin: wrong, key, timeoutMs: 3000 })).toMatchObject({ ok: false });
    expect(received.length).toBe(before + 2);
  });

  it('gives up within its timeout when nobody answers', async () => {
    const started = Date.now();
    const result = await deliverEvent(event, { url: 'https://localhost:1', ca: readFileSync(join(dir, 'ca.crt')), key, timeoutMs: 500 });
    expect(result.ok).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('keptAliveDelivery (the flusher)', () => {
  it('sends event after event over one verified connection, and a new one once the server closed it', async () => {
    let connections = 0;
    const count = () => connections++;
    server.on('secureConnection', count);
    const delivery = keptAliveDelivery({ url, ca: readFileSync(join(dir, 'ca.crt')), key });
    try {
      for (let i = 0; i < 5; i++) expect(await delivery.deliver(event, { timeoutMs: 3000, spoolDepth: 0 })).toEqual({ ok: true, status: 202 });
      expect(connections).toBe(1);
      (server as unknown as { closeIdleConnections(): void }).closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
      expect(await delivery.deliver(event, { timeoutMs: 3000, spoolDepth: 0 })).toEqual({ ok: true, status: 202 });
      expect(connections).toBe(2);
    } finally {
      delivery.close();
      server.off('secureConnection', count);
    }
  });

  it('checks the pin on its connections too', async () => {
    const delivery = keptAliveDelivery({ url, pin: Buffer.alloc(32, 7), key });
    try {
      expect(await delivery.deliver(event, { timeoutMs: 3000, spoolDepth: 0 })).toMatchObject({ ok: false, retryable: true, reason: expect.stringMatching(/does not match the pin/) });
    } finally {
      delivery.close();
    }
  });
});

describe('failoverDelivery (an orchestrator pair)', () => {
  it('goes on to the next orchestrator when one is down or stands by, keeps to the one that took it, and not past a bad event', async () => {
    // A standby: 503 with Retry-After to everything.
    let standbyAsked = 0;
    const standbyApp = new Hono();
    standbyApp.all('*', (c) => {
      standbyAsked++;
      c.header('retry-after', '1');
      return c.json({ error: { code: 'STANDBY', message: 'this orchestrator stands by' } }, 503);
    });
    const standby = await listenHttps({ fetch: standbyApp.fetch, host: '127.0.0.1', port: 0, certFile: join(dir, 'srv.crt'), keyFile: join(dir, 'srv.key') });
    // Down: a port nothing listens on (the standby's, once it is closed, below).
    const ca = readFileSync(join(dir, 'ca.crt'));
    const standbyUrl = `https://localhost:${standby.port}`;
    const delivery = failoverDelivery([{ url: standbyUrl, ca, key }, { url, ca, key }], 3000);
    const before = received.length;
    try {
      expect(await delivery.deliver(event, { timeoutMs: 3000, spoolDepth: 0 })).toEqual({ ok: true, status: 202 });
      expect(standbyAsked).toBe(1);
      // The next goes straight to the one that took the last.
      expect(await delivery.deliver(event, { timeoutMs: 3000, spoolDepth: 0 })).toEqual({ ok: true, status: 202 });
      expect(standbyAsked).toBe(1);
      expect(received.length).toBe(before + 2);
      // A bad event is bad everywhere: answered at once, the other not asked.
      failWith = 400;
      expect(await delivery.deliver(event, { timeoutMs: 3000, spoolDepth: 0 })).toMatchObject({ ok: false, retryable: false, status: 400 });
      expect(standbyAsked).toBe(1);
      // Both failing: each asked once, the last failure is the answer (the event stays spooled).
      failWith = 503;
      expect(await delivery.deliver(event, { timeoutMs: 3000, spoolDepth: 0 })).toMatchObject({ ok: false, retryable: true, status: 503 });
      expect(standbyAsked).toBe(2);
      failWith = 0;
      standby.server.close();
      (standby.server as unknown as { closeAllConnections(): void }).closeAllConnections();
      const down = failoverDelivery([{ url: standbyUrl, ca, key }, { url, ca, key }], 3000);
      try {
        expect(await down.deliver(event, { timeoutMs: 3000, spoolDepth: 0 })).toEqual({ ok: true, status: 202 });
      } finally {
        down.close();
      }
    } finally {
      failWith = 0;
      delivery.close();
      standby.server.close();
    }
  });
});
