import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { errorBody } from './http-errors.js';

/**
 * `Authorization: Bearer TOKEN` for routes a tool that cannot sign requests
 * must reach (Prometheus scraping /metrics: its `authorization.credentials_file`).
 * The token comes from a mode-600 file (readSecretFile). Compared in constant
 * time over SHA-256 digests, so neither the content nor the length leaks.
 */
export function bearerAuth(options: { token: Buffer; realm?: string }): MiddlewareHandler {
  const expected = createHash('sha256').update(options.token).digest();
  const realm = options.realm ?? 'metrics';
  return async function verifyBearer(c, next) {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header);
    const given = createHash('sha256').update(match?.[1] ?? '').digest();
    if (!match || !timingSafeEqual(given, expected)) {
      c.header('www-authenticate', `Bearer realm="${realm}"`);
      return c.json(errorBody('UNAUTHENTICATED', 'a valid bearer token is needed'), 401);
    }
    return next();
  };
}
