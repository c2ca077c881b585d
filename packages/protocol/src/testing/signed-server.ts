import type { ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { RequestVerifier } from '../hmac.js';
import { Keyring, fixedKeys, type SigningKey } from '../keys.js';
import { hmacAuth } from '../hmac-middleware.js';
import { listenHttps } from '../serve-https.js';
import { makeTestCerts, type TestCerts } from './certs.js';

/**
 * For signed clients' unit tests: an HTTPS server on 127.0.0.1 served as the
 * daemons serve theirs (a certificate of a throw-away CA, /healthz open,
 * /v1/* behind the signature check, accepting `key`), with the test's own routes added by
 * `routes`. It counts the TLS connections it accepted and the requests that
 * reached it; `other` is a second CA and certificate, for pins that must not match.
 */
export interface SignedTestServer {
  url: string;
  port: number;
  certs: TestCerts;
  other: TestCerts;
  connections(): number;
  hits(): number;
  /** End the kept-alive connections that wait for a request (as a server's keep-alive timeout does). */
  closeIdleConnections(): void;
  close(): void;
}

export async function startSignedTestServer(name: string, key: SigningKey, routes: (app: Hono) => void): Promise<SignedTestServer> {
  const certs = makeTestCerts(name);
  const other = makeTestCerts(`${name}-other`);
  let connections = 0;
  let hits = 0;
  const app = new Hono();
  app.use('*', async (_c, next) => {
    hits++;
    await next();
  });
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.use('/v1/*', hmacAuth({ verifier: new RequestVerifier({ keys: new Keyring({ test: fixedKeys([key]) }) }) }));
  routes(app);
  const { server, port } = await listenHttps({ fetch: app.fetch, host: '127.0.0.1', port: 0, certFile: certs.cert, keyFile: certs.key });
  server.on('secureConnection', () => connections++);
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    certs,
    other,
    connections: () => connections,
    hits: () => hits,
    closeIdleConnections: () => (server as ServerType & { closeIdleConnections(): void }).closeIdleConnections(),
    close: () => {
      (server as ServerType & { closeAllConnections?(): void }).closeAllConnections?.();
      server.close();
    },
  };
}
