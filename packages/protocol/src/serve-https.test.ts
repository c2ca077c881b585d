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
