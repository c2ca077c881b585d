import type { MiddlewareHandler } from 'hono';
import { RequestVerifier } from './hmac.js';
import { errorBody } from './http-errors.js';

export interface HmacAuthOptions {
  verifier: RequestVerifier;
  /** Paths served without a signature (e.g. /healthz). */
  publicPaths?: readonly string[];
  /** Largest body accepted, bytes; larger ones get 413 before hashing. */
  maxBodyBytes?: number;
  /**
   * What each peer may call: false is a 403 (FORBIDDEN). Default: every
   * signed route for every peer the verifier knows.
   */
  allow?: (peer: string, method: string, path: string) => boolean;
  onRefused?: (info: { method: string; path: string; reason: string; peer?: string; keyId?: string }) => void;
}

/**
 * Refuses any request whose signature does not verify (401), or whose
 * signer's peer may not call the route (403), before a handler sees it. The raw body is read here and re-served to the handler,
 * so the signature covers exactly the bytes the handler parses.
 */
export function hmacAuth(options: HmacAuthOptions): MiddlewareHandler {
  const publicPaths = new Set(options.publicPaths ?? []);
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  return async function verifyHmac(c, next) {
    if (publicPaths.has(c.req.path)) return next();
    const declared = Number(c.req.header('content-length') ?? '0');
    if (declared > maxBodyBytes) return c.json(errorBody('BODY_TOO_LARGE', `body over ${maxBodyBytes} bytes`), 413);
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.byteLength > maxBodyBytes) return c.json(errorBody('BODY_TOO_LARGE', `body over ${maxBodyBytes} bytes`), 413);
    const url = new URL(c.req.url);
    // One spelling of each path: the router decodes %XX before it matches, the
    // signature and the peer's rights are over the path as sent. No route
    // here needs an escape, so a path with one is refused before either.
    if (url.pathname.includes('%')) return c.json(errorBody('BAD_PATH', 'percent-encoded paths are not accepted'), 400);
    const result = options.verifier.verify({
      method: c.req.method,
      // node-server builds the URL from the Host header: its host is the authority the client addressed (default port left out, as clients sign it).
      authority: url.host,
      path: url.pathname + url.search,
      body,
      headers: { get: (name) => c.req.header(name) },
    });
    if (!result.ok) {
      options.onRefused?.({ method: c.req.method, path: url.pathname, reason: result.reason });
      if (result.busy) return c.json(errorBody('BUSY', result.reason), 503, { 'retry-after': '1' });
      return c.json(errorBody(result.code ?? 'UNAUTHENTICATED', result.reason), 401);
    }
    if (options.allow && !options.allow(result.peer, c.req.method, url.pathname)) {
      const reason = `key ${result.keyId} (${result.peer}) may not ${c.req.method} ${url.pathname}`;
      options.onRefused?.({ method: c.req.method, path: url.pathname, reason, peer: result.peer, keyId: result.keyId });
      return c.json(errorBody('FORBIDDEN', reason), 403);
    }
    return next();
  };
}
