import type { ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitBody } from './body-limit.js';
import { listenHttps } from './serve-https.js';
import { makeTestCerts } from './testing/certs.js';

/** Slow and oversized clients against the real listener (TLS, node's HTTP parser, hono). */
let server: ServerType;
let port: number;
let bodiesSeen = 0;

beforeAll(async () => {
  const certs = makeTestCerts('serve');
  const app = new Hono();
  app.use(limitBody({ maxBytes: 1024 }));
  app.post('/echo', async (c) => {
    bodiesSeen++;
    return c.json({ bytes: (await c.req.arrayBuffer()).byteLength });
  });
  // Every way of reading the body, as limitBody leaves it (read from node's request).
  app.post('/read', async (c) => {
    bodiesSeen++;
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const form = c.req.header('content-type')?.startsWith('application/x-www-form-urlencoded') ? await c.req.parseBody() : null;
    const json = c.req.header('content-type') === 'application/json' ? await c.req.json() : null;
    return c.json({ bytes: bytes.byteLength, text: await c.req.text(), json, form });
  });
  ({ server, port } = await listenHttps({
    fetch: app.fetch, host: '127.0.0.1', port: 0, certFile: certs.cert, keyFile: certs.key,
    handshakeTimeoutMs: 1000, headersTimeoutMs: 500, requestTimeoutMs: 1500, checkIntervalMs: 100,
  }));
});

afterAll(() => server?.close());

interface Conversation {
  socket: TLSSocket;
  received: () => string;
  closed: Promise<number>;
}

function open(): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    let text = '';
    socket.setEncoding('utf8').on('data', (d: string) => (text += d));
    const closed = new Promise<number>((r) => socket.on('close', () => r(Date.now() - started)));
    socket.on('error', () => {});
    socket.once('secureConnect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('listenHttps against hostile clients', () => {
  it('disconnects a client that sends its headers one byte at a time', async () => {
    const { socket, received, closed } = await open();
    const request = 'GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
    let sent = 0;
    const trickle = (async () => {
      while (!socket.destroyed && sent < request.length) {
        socket.write(request[sent++]!);
        await sleep(50);
      }
    })();
    const ms = await closed;
    await trickle;
    expect(ms).toBeLessThan(3000);
    expect(sent).toBeLessThan(request.length);
    expect(received()).toMatch(/^HTTP\/1.1 408/);
  });

  it('disconnects a client that connects and says nothing', async () => {
    const { closed } = await open();
    expect(await closed).toBeLessThan(3000);
  });

  it('cuts off a chunked body over the limit, without waiting for its end', async () => {
    const { socket, received, closed } = await open();
    socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = 'x'.repeat(512);
    let sent = 0;
    // Up to 1 MiB, slowly enough for the server to answer first.
    while (!socket.destroyed && sent < 1024 * 1024 && !received()) {
      socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      sent += chunk.length;
      await sleep(5);
    }
    await closed;
    expect(received()).toMatch(/^HTTP\/1.1 413/);
    expect(received()).toMatch(/"code":"BODY_TOO_LARGE"/);
    expect(sent).toBeLessThan(64 * 1024);
  });

  it('refuses a declared length over the limit before reading the body, and accepts one under it', async () => {
    const { socket, received, closed } = await open();
    socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n');
    await closed;
    expect(received()).toMatch(/^HTTP\/1.1 413/);
    const before = bodiesSeen;
    const small = await open();
    small.socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n0123456789');
    await small.closed;
    expect(small.received()).toMatch(/^HTTP\/1.1 200[\s\S]*\{"bytes":10\}/);
    expect(bodiesSeen).toBe(before + 1);
  });

  it('serves the body read from node to arrayBuffer, text, json and parseBody alike, chunked or not', async () => {
    const body = '\u{feff}{"name":"caf\u00e9 \u{1f600}","n":1}';
    const bytes = Buffer.from(body);
    const chunked = await open();
    chunked.socket.write('POST /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    for (const part of [bytes.subarray(0, 5), bytes.subarray(5, 20), bytes.subarray(20)]) {
      chunked.socket.write(`${part.length.toString(16)}\r\n`);
      chunked.socket.write(part);
      chunked.socket.write('\r\n');
      await sleep(5);
    }
    chunked.socket.write('0\r\n\r\n');
    await chunked.closed;
    const answer = JSON.parse(chunked.received().slice(chunked.received().indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ''));
    // Response#text() drops a leading BOM; so does the decoded text here.
    expect(answer).toEqual({ bytes: bytes.length, text: body.slice(1), json: { name: 'caf\u00e9 \u{1f600}', n: 1 }, form: null });

    const form = await open();
    form.socket.write('POST /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 13\r\n\r\ntoken=a%2Bb&x');
    await form.closed;
    expect(form.received()).toMatch(/"form":\{"token":"a\+b","x":""\}/);
  });

  it('answers no handler when the client goes away mid-body, and serves the next client', async () => {
    const before = bodiesSeen;
    const gone = await open();
    gone.socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789');
    await sleep(50);
    gone.socket.destroy();
    await gone.closed;
    const next = await open();
    next.socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc');
    await next.closed;
    expect(next.received()).toMatch(/^HTTP\/1.1 200[\s\S]*\{"bytes":3\}/);
    expect(bodiesSeen).toBe(before + 1);
  });

  it('refuses plain HTTP on the TLS port', async () => {
    const { connect: tcp } = await import('node:net');
    const socket = tcp({ host: '127.0.0.1', port });
    let text = '';
    socket.setEncoding('utf8').on('data', (d: string) => (text += d));
    socket.on('error', () => {});
    socket.write('GET /echo HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => socket.on('close', r));
    expect(text).not.toMatch(/^HTTP\/1.1 [23]/);
  });
});
