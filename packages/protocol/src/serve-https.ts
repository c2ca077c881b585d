import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';

export interface HttpsListenOptions {
  fetch: FetchHandler;
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  /**
   * Slow-client limits, ms: the TLS handshake, the request headers, and the
   * whole request (headers and body) must each arrive within theirs, or the
   * connection is closed (a 408 for the last two). Node checks the last two
   * every `checkIntervalMs`, so a slow client may last that much longer.
   */
  handshakeTimeoutMs?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  checkIntervalMs?: number;
}

/** The only place that knows about Node's https: TLS only, no plain listener. */
/**
 * A request's handler, as @hono/node-server calls it: the request, and its
 * `env` (`{ incoming, outgoing }`: node's own request and response), which
 * the API reads the body (body-limit.ts) and the caller's address from. A
 * wrapper must pass both on.
 */
export type FetchHandler = (request: Request, env?: unknown) => Response | Promise<Response>;

export function listenHttps(options: HttpsListenOptions): Promise<{ server: ServerType; port: number }> {
  const serverOptions = {
    cert: readFileSync(options.certFile),
    key: readFileSync(options.keyFile),
    minVersion: 'TLSv1.2' as const,
    handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
    headersTimeout: options.headersTimeoutMs ?? 10_000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    // Node's default is 30 s, which would triple the headers limit above.
    connectionsCheckingInterval: options.checkIntervalMs ?? 1000,
  };
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: options.fetch, hostname: options.host, port: options.port, createServer, serverOptions },
      (info: AddressInfo) => resolve({ server, port: info.port }),
    );
    server.once('error', reject);
  });
}
