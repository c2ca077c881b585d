import type { MiddlewareHandler } from 'hono';
import { RequestVerifier } from './hmac.js';
import { errorBody } from './http-errors.js';

export interface HmacAuthOptions {
  verifier: RequestVerifier;
  /** Paths served without a signature (e.g. /healthz). */
  publicPaths?: readonly string[];
  /** Largest body accepted, bytes; larger ones get 413 before hashing. */
  maxBodyBytes?: number;
  onRefused?: (info: { method: string; path: string; reason: string }) => void;
}

/**
 * Refuses any request whose HMAC signature does not verify (401), before a
 * handler sees it. The raw body is read here and re-served to the handler,
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
    const result = options.verifier.verify({
      method: c.req.method,
      path: url.pathname + url.search,
      body,
      headers: { get: (name) => c.req.header(name) },
    });
    if (!result.ok) {
      options.onRefused?.({ method: c.req.method, path: url.pathname, reason: result.reason });
      if (result.busy) return c.json(errorBody('BUSY', result.reason), 503, { 'retry-after': '1' });
      return c.json(errorBody(result.code ?? 'UNAUTHENTICATED', result.reason), 401);
    }
    return next();
  };
}
