import { readFileSync } from 'node:fs';
import type { MiddlewareHandler } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestVerifier } from './hmac.js';
import { Keyring, fixedKeys } from './keys.js';
import { testKey } from './testing/keys.js';
import { hmacAuth } from './hmac-middleware.js';
import { REQUEST_ID_HEADER, SignedClient, SignedClientError, readErrorBody, type SignedClientOptions } from './signed-client.js';
import { startSignedTestServer, type SignedTestServer } from './testing/signed-server.js';
import { certificatePin, parsePin } from './tls-pin.js';

const key = testKey('test-1', 'c');
let srv: SignedTestServer;
let slowMs = 0;
const seen: { method: string; path: string; body: string; requestId: string | undefined }[] = [];
/** /restarted/*: a server that started just now, its clock ahead of the client's (set by its test). */
let restartedAuth: MiddlewareHandler | undefined;
let restartedTries = 0;

beforeAll(async () => {
  // The server's own verifier on /v1/*: signature, window and nonce, as the daemons check them.
  srv = await startSignedTestServer('signed-client', key, (app) => {
    app.all('/v1/echo', async (c) => {
      const body = await c.req.text();
      seen.push({ method: c.req.method, path: c.req.path + (new URL(c.req.url).search || ''), body, requestId: c.req.header(REQUEST_ID_HEADER) });
      if (slowMs) await new Promise((r) => setTimeout(r, slowMs));
      return c.json({ method: c.req.method, body: body ? JSON.parse(body) : null }, c.req.method === 'POST' ? 201 : 200);
    });
    app.use('/restarted/*', async (c, next) => {
      restartedTries++;
      return restartedAuth!(c, next);
    });
    app.get('/restarted/echo', (c) => c.json({ ok: true }));
    app.get('/v1/missing', (c) => c.json({ error: { code: 'NOT_FOUND', message: 'no such thing' } }, 404));
    app.get('/v1/big', (c) => c.text('x'.repeat(Number(c.req.query('bytes')))));
    app.get('/v1/trickle', (c) => {
      // An answer whose body never ends: only the total timeout ends it.
      const stream = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{'));
        },
      });
      return new Response(stream, { headers: { 'content-type': 'application/json' } });
    });
  });
});

afterAll(() => srv?.close());

const ca = () => readFileSync(srv.certs.caCert);
const pinOf = (file: string) => parsePin(certificatePin(readFileSync(file)));

async function withClient<T>(options: Partial<SignedClientOptions>, fn: (client: SignedClient) => Promise<T>): Promise<T> {
  const client = new SignedClient({ url: srv.url, trust: { ca: ca() }, key, timeoutMs: 5000, ...options });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

async function failure(promise: Promise<unknown>): Promise<SignedClientError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SignedClientError);
    return error as SignedClientError;
  }
  throw new Error('expected a SignedClientError');
}

describe('SignedClient', () => {
  it('signs requests as the server verifies them: method, path with query, JSON body; passes the request id', async () => {
    await withClient({ requestId: () => 'from-context' }, async (client) => {
      seen.length = 0;
      expect(await client.call({ method: 'POST', path: '/v1/echo?x=1', json: { a: [1, 'two'] } })).toEqual({ method: 'POST', body: { a: [1, 'two'] } });
      expect(await client.call({ method: 'GET', path: '/v1/echo', requestId: 'explicit' })).toEqual({ method: 'GET', body: null });
      const del = await client.request({ method: 'DELETE', path: '/v1/echo', body: '{"raw":true}' });
      expect(del).toMatchObject({ status: 200, json: { method: 'DELETE', body: { raw: true } } });
      expect(seen).toEqual([
        { method: 'POST', path: '/v1/echo?x=1', body: '{"a":[1,"two"]}', requestId: 'from-context' },
        { method: 'GET', path: '/v1/echo', body: '', requestId: 'explicit' },
        { method: 'DELETE', path: '/v1/echo', body: '{"raw":true}', requestId: 'from-context' },
      ]);
    });
  });

  it('is refused by the verifier with another secret, unsigned, or replayed', async () => {
    await withClient({ key: testKey('test-1', 'w') }, async (client) => {
      const refused = await failure(client.call({ method: 'GET', path: '/v1/echo' }));
      expect(refused).toMatchObject({ kind: 'http', status: 401 });
      expect(await client.request({ method: 'GET', path: '/v1/echo', sign: false })).toMatchObject({ status: 401 });
      expect(await client.request({ method: 'GET', path: '/v1/echo', sign: key })).toMatchObject({ status: 200 });
    });
  });

  it('signs anew and sends again a request refused as signed before the server started, a few times', async () => {
    // The server started a second after this clock says: a request signed now, or in the next second, is refused.
    restartedAuth = hmacAuth({ verifier: new RequestVerifier({ keys: new Keyring({ test: fixedKeys([key]) }), notBefore: Date.now() + 1000 }) });
    restartedTries = 0;
    await withClient({ beforeStartRetries: 0 }, async (client) => {
      const refused = await failure(client.call({ method: 'GET', path: '/restarted/echo' }));
      expect(refused).toMatchObject({ kind: 'http', status: 401, code: 'SIGNED_BEFORE_START' });
    });
    expect(restartedTries).toBe(1);
    restartedTries = 0;
    await withClient({}, async (client) => {
      expect(await client.call({ method: 'GET', path: '/restarted/echo' })).toEqual({ ok: true });
    });
    expect(restartedTries).toBeGreaterThan(1);
    expect(restartedTries).toBeLessThanOrEqual(4);
  });

  it('reuses one kept-alive connection for sequential requests, and opens a new one once the server closed it', async () => {
    await withClient({}, async (client) => {
      const before = srv.connections();
      for (let i = 0; i < 6; i++) expect((await client.request({ method: 'GET', path: '/v1/echo' })).status).toBe(200);
      expect(srv.connections() - before).toBe(1);
      srv.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
      expect((await client.request({ method: 'POST', path: '/v1/echo', json: {} })).status).toBe(201);
      expect(srv.connections() - before).toBe(2);
    });
  });

  it('keeps to its pool size: several requests at once on one connection', async () => {
    await withClient({ connections: 1 }, async (client) => {
      const before = srv.connections();
      const answers = await Promise.all(Array.from({ length: 5 }, () => client.request({ method: 'GET', path: '/v1/echo' })));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
      expect(srv.connections() - before).toBe(1);
    });
  });

  it('talks to the pinned certificate (with or without a CA) and sends nothing to another', async () => {
    await withClient({ trust: { pin: pinOf(srv.certs.cert) } }, async (client) => {
      expect((await client.request({ method: 'GET', path: '/healthz' })).status).toBe(200);
    });
    await withClient({ trust: { ca: ca(), pin: pinOf(srv.certs.cert) } }, async (client) => {
      expect((await client.request({ method: 'GET', path: '/healthz' })).status).toBe(200);
    });
    const before = srv.hits();
    for (const trust of [{ pin: pinOf(srv.other.cert) }, { ca: ca(), pin: pinOf(srv.other.cert) }]) {
      const error = await withClient({ trust }, (client) => failure(client.request({ method: 'POST', path: '/v1/echo', json: { secret: 1 } })));
      expect(error).toMatchObject({ kind: 'network', code: 'ERR_TLS_PIN_MISMATCH', message: /does not match the pin/ });
    }
    expect(srv.hits()).toBe(before);
  });

  it('refuses a server the CA did not sign, before sending anything', async () => {
    const before = srv.hits();
    const error = await withClient({ trust: { ca: readFileSync(srv.other.caCert) } }, (client) => failure(client.request({ method: 'GET', path: '/healthz' })));
    expect(error.kind).toBe('network');
    expect(error.code).toMatch(/CERT|VERIFY|SIGNATURE|ISSUER/);
    expect(srv.hits()).toBe(before);
  });

  it('gives up when the answer does not come within the timeout, and works again after', async () => {
    await withClient({ timeoutMs: 200 }, async (client) => {
      slowMs = 1000;
      const started = Date.now();
      try {
        const error = await failure(client.request({ method: 'GET', path: '/v1/echo' }));
        expect(error).toMatchObject({ kind: 'network', code: 'ERR_TIMEOUT', message: 'no answer within 200 ms' });
      } finally {
        slowMs = 0;
      }
      expect(Date.now() - started).toBeLessThan(900);
      expect((await client.request({ method: 'GET', path: '/healthz' })).status).toBe(200);
      // A body that starts and never ends: the total timeout, not only the headers'.
      expect(await failure(client.request({ method: 'GET', path: '/v1/trickle', timeoutMs: 300 }))).toMatchObject({ code: 'ERR_TIMEOUT', message: 'no answer within 300 ms' });
    });
  });

  it('says by its code when no byte came for the idle timeout, not the whole answer', async () => {
    await withClient({ idleTimeoutMs: 200, timeoutMs: 10_000 }, async (client) => {
      slowMs = 1000;
      try {
        const error = await failure(client.request({ method: 'GET', path: '/v1/echo' }));
        expect(error).toMatchObject({ kind: 'network', code: 'ERR_IDLE_TIMEOUT', message: 'no answer within 200 ms (idle)' });
      } finally {
        slowMs = 0;
      }
    });
  });

  it('gives up on a connection with no handshake within the connect timeout', async () => {
    const { createServer } = await import('node:net');
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as { port: number }).port;
    try {
      const client = new SignedClient({ url: `https://127.0.0.1:${silentPort}`, trust: { ca: ca() }, key, connectTimeoutMs: 200, timeoutMs: 5000 });
      expect(await failure(client.request({ method: 'GET', path: '/healthz' }))).toMatchObject({ kind: 'network', code: 'ERR_CONNECT_TIMEOUT' });
      await client.close();
    } finally {
      silent.close();
    }
  });

  it('parses the server error body into the error: status, code, message', async () => {
    await withClient({}, async (client) => {
      const error = await failure(client.call({ method: 'GET', path: '/v1/missing' }));
      expect(error).toMatchObject({ kind: 'http', status: 404, code: 'NOT_FOUND', serverMessage: 'no such thing', message: 'GET /v1/missing answered 404 NOT_FOUND: no such thing' });
      // request() answers whatever the status; readErrorBody reads the server's shape.
      const answer = await client.request({ method: 'GET', path: '/v1/missing' });
      expect(readErrorBody(answer.json)).toEqual({ code: 'NOT_FOUND', message: 'no such thing' });
    });
  });

  it('tells network errors from HTTP errors: nothing listening', async () => {
    const client = new SignedClient({ url: 'https://127.0.0.1:1', trust: { ca: ca() }, key });
    expect(await failure(client.request({ method: 'GET', path: '/healthz' }))).toMatchObject({ kind: 'network', code: 'ECONNREFUSED', status: undefined });
    await client.close();
  });

  it('refuses an answer larger than its limit, and goes on over a new connection', async () => {
    await withClient({ maxResponseBytes: 64 * 1024 }, async (client) => {
      expect((await client.request({ method: 'GET', path: '/v1/big?bytes=65536' })).text).toHaveLength(65536);
      for (const bytes of [65537, 4 * 1024 * 1024]) {
        expect(await failure(client.request({ method: 'GET', path: `/v1/big?bytes=${bytes}` }))).toMatchObject({ kind: 'response', code: 'RESPONSE_TOO_LARGE', status: 200 });
      }
      expect(await failure(client.request({ method: 'GET', path: '/v1/big?bytes=2000', maxResponseBytes: 1000 }))).toMatchObject({ code: 'RESPONSE_TOO_LARGE' });
      expect((await client.request({ method: 'GET', path: '/healthz' })).json).toEqual({ ok: true });
    });
  });

  it('without keep-alive, closes each connection after its request', async () => {
    await withClient({ keepAlive: false }, async (client) => {
      const before = srv.connections();
      for (let i = 0; i < 3; i++) expect((await client.request({ method: 'GET', path: '/healthz' })).status).toBe(200);
      expect(srv.connections() - before).toBe(3);
    });
  });
});

describe('SignedClient.stream: a download read as it comes', () => {
  it('signs as request does, and hands over a 2xx body larger than maxResponseBytes, unread', async () => {
    await withClient({ maxResponseBytes: 1024, connections: 1 }, async (client) => {
      const answer = await client.stream({ method: 'GET', path: '/v1/big?bytes=300000' });
      expect(answer.status).toBe(200);
      let bytes = 0;
      for await (const chunk of answer.body) bytes += (chunk as Buffer).length;
      expect(bytes).toBe(300_000);
      // Its connection is free again: the next request goes through on a one-connection pool as well.
      expect((await client.request({ method: 'GET', path: '/v1/echo' })).status).toBe(200);
    });
  });

  it('throws an http SignedClientError with the server’s error for any other status, and a refused signature as such', async () => {
    await withClient({ connections: 1 }, async (client) => {
      await expect(client.stream({ method: 'GET', path: '/v1/missing' })).rejects.toMatchObject({ kind: 'http', status: 404, code: 'NOT_FOUND' });
      await expect(client.stream({ method: 'GET', path: '/v1/big?bytes=10', sign: false })).rejects.toMatchObject({ kind: 'http', status: 401 });
      expect((await client.stream({ method: 'GET', path: '/v1/big?bytes=10' })).status).toBe(200);
    });
  });

  it('gives up when no byte comes for idleTimeoutMs', async () => {
    await withClient({}, async (client) => {
      const answer = await client.stream({ method: 'GET', path: '/v1/trickle', idleTimeoutMs: 300 });
      await expect(async () => {
        for await (const _ of answer.body) void _;
      }).rejects.toMatchObject({ code: 'ERR_IDLE_TIMEOUT' });
    });
  });
});
