import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenHttps } from './serve-https.js';
import { makeTestCerts, type TestCerts } from './testing/certs.js';
import { certificatePin, loadServerTrust, parsePin, verifiedConnection, type ServerTrust } from './tls-pin.js';

let certs: TestCerts;
let other: TestCerts;
let server: ServerType;
let port: number;
let hits = 0;

beforeAll(async () => {
  certs = makeTestCerts('pin');
  other = makeTestCerts('other');
  const app = new Hono();
  app.all('*', (c) => {
    hits++;
    return c.json({ ok: true });
  });
  ({ server, port } = await listenHttps({ fetch: app.fetch, host: '127.0.0.1', port: 0, certFile: certs.cert, keyFile: certs.key }));
});

afterAll(() => server?.close());

function httpsGet(trust: ServerTrust, host = '127.0.0.1'): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    const req = request(
      { host, port, path: '/x', method: 'POST', createConnection: verifiedConnection(trust, 3000) },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', (error) => resolve({ error: error.message }));
    req.end('{"signed":"request"}');
  });
}

describe('certificate pins', () => {
  it('parses base64 and hex (with or without colons) and refuses the rest', () => {
    const digest = Buffer.alloc(32, 0xab);
    expect(parsePin(`sha256/${digest.toString('base64')}`)).toEqual(digest);
    expect(parsePin(`sha256/${digest.toString('hex')}`)).toEqual(digest);
    expect(parsePin(`SHA256/${digest.toString('hex').toUpperCase().match(/../g)!.join(':')}`)).toEqual(digest);
    for (const bad of ['', 'sha1/abc', `sha256/${'a'.repeat(63)}`, 'sha256/not base64 at all =', `sha256/${Buffer.alloc(16).toString('base64')}`]) {
      expect(() => parsePin(bad)).toThrow(/pin must/);
    }
  });

  it('computes the pin openssl computes', () => {
    const fingerprint = execFileSync('openssl', ['x509', '-in', certs.cert, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    const hex = fingerprint.trim().split('=')[1]!;
    expect(parsePin(certificatePin(readFileSync(certs.cert)))).toEqual(parsePin(`sha256/${hex}`));
  });

  it('needs a CA or a pin, and names the key', () => {
    expect(() => loadServerTrust({}, '[orchestrator]')).toThrow(/\[orchestrator\]: give ca/);
    expect(() => loadServerTrust({ pin: 'sha256/x' }, '[agents.a]')).toThrow(/^\[agents.a\] pin: pin must/);
    expect(() => loadServerTrust({ ca: '/nonexistent' }, '[agents.a]')).toThrow(/\[agents.a\] ca: cannot read \/nonexistent/);
  });

  describe.each([
    ['node:https', httpsGet],
  ] as const)('over %s', (_client, get) => {
    const pin = () => parsePin(certificatePin(readFileSync(certs.cert)));
    const wrongPin = () => parsePin(certificatePin(readFileSync(other.cert)));

    it('accepts the right CA, the right pin, or both', async () => {
      expect(await get({ ca: readFileSync(certs.caCert) })).toEqual({ status: 200 });
      expect(await get({ pin: pin() })).toEqual({ status: 200 });
      expect(await get({ ca: readFileSync(certs.caCert), pin: pin() })).toEqual({ status: 200 });
    });

    it('refuses a wrong pin, a wrong CA, or one of two wrong, before sending the request', async () => {
      const before = hits;
      const results = [
        await get({ pin: wrongPin() }),
        await get({ ca: readFileSync(other.caCert) }),
        await get({ ca: readFileSync(certs.caCert), pin: wrongPin() }),
        await get({ ca: readFileSync(other.caCert), pin: pin() }),
      ];
      for (const result of results) expect(result).toHaveProperty('error');
      expect(JSON.stringify(results[0])).toMatch(/does not match the pin/);
      expect(hits).toBe(before);
    });
  });

  it('with a CA, connects by host name too (SNI and the name check)', async () => {
    expect(await httpsGet({ ca: readFileSync(certs.caCert) }, 'localhost')).toEqual({ status: 200 });
  });
});
