import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { errorBody } from './http-errors.js';

/** Default largest request body, bytes: a lease event is well under 2 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/**
 * Refuse bodies over `maxBytes` with a JSON 413, counting the bytes as they
 * stream in: a declared Content-Length over the limit is refused before any
 * byte is read, and a chunked body without one is cut off at the limit, so
 * no more than `maxBytes` is ever held. The answer closes the connection, so
 * the rest of an oversized body is not read either.
 */
export function limitBody(options: { maxBytes?: number } = {}): MiddlewareHandler {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new Error(`limitBody: maxBytes must be a positive integer, got ${maxBytes}`);
  return bodyLimit({
    maxSize: maxBytes,
    onError: (c) => {
      c.header('connection', 'close');
      return c.json(errorBody('BODY_TOO_LARGE', `body over ${maxBytes} bytes`), 413);
    },
  });
}
