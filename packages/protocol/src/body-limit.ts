import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { errorBody } from './http-errors.js';

/** Default largest request body, bytes: a lease event is well under 2 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** What limitBody needs of node's IncomingMessage (`c.env.incoming` under @hono/node-server). */
interface NodeIncoming {
  readonly readableEnded: boolean;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: string, listener: (...args: never[]) => void): unknown;
  pause(): unknown;
}

function nodeIncomingOf(c: Context): NodeIncoming | undefined {
  const incoming = (c.env as { incoming?: Partial<NodeIncoming> } | undefined)?.incoming;
  return typeof incoming?.on === 'function' && typeof incoming.pause === 'function' && typeof incoming.readableEnded === 'boolean'
    ? (incoming as NodeIncoming)
    : undefined;
}

/** Reads a node request body, up to `maxBytes`: the bytes, or `undefined` once it is over (reading stops there). */
function readIncoming(incoming: NodeIncoming, maxBytes: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('close', onClose);
      incoming.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        done();
        incoming.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      // A copy the body owns: chunks may be slices of a larger (pooled) buffer.
      const body = new Uint8Array(size);
      let offset = 0;
      for (const chunk of chunks) {
        body.set(chunk, offset);
        offset += chunk.length;
      }
      resolve(body);
    };
    // The client went away mid-body (or node's request timeout cut it off): nobody reads the answer.
    const onClose = () => {
      done();
      reject(new HTTPException(400, { message: 'connection closed before the request body ended' }));
    };
    const onError = (error: Error) => {
      done();
      reject(new HTTPException(400, { message: `request body: ${error.message}`, cause: error }));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('close', onClose);
    incoming.on('error', onError);
  });
}

/**
 * Refuse bodies over `maxBytes` with a JSON 413, counting the bytes as they
 * stream in: a declared Content-Length over the limit is refused before any
 * byte is read, and a chunked body without one is cut off at the limit, so
 * no more than `maxBytes` is ever held. The answer closes the connection, so
 * the rest of an oversized body is not read either.
 *
 * Under @hono/node-server the body is read straight from node's request and
 * left in hono's body cache (`c.req.arrayBuffer()`, `.text()`, `.json()` then
 * answer from it): touching `c.req.raw.body` would make a WHATWG Request and
 * its web streams for each request, which cost several times what the rest of
 * a small signed POST does. Elsewhere (`app.request()` in tests, other
 * runtimes) hono's own bodyLimit does the same on the Request.
 */
export function limitBody(options: { maxBytes?: number } = {}): MiddlewareHandler {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new Error(`limitBody: maxBytes must be a positive integer, got ${maxBytes}`);
  const tooLarge = (c: Context) => {
    c.header('connection', 'close');
    return c.json(errorBody('BODY_TOO_LARGE', `body over ${maxBytes} bytes`), 413);
  };
  const onRequest = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  const decoder = new TextDecoder();
  return async function limitBodySize(c, next) {
    const incoming = nodeIncomingOf(c);
    if (!incoming) return onRequest(c, next);
    // As node-server: GET and HEAD carry no body for the handler.
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const declared = c.req.header('content-length');
    if (declared !== undefined && Number(declared) > maxBytes) return tooLarge(c);
    // Read already (by nothing of ours): its 'end' will not come again.
    if (incoming.readableEnded) throw new Error('limitBody: the request body was read before it');
    const body = await readIncoming(incoming, maxBytes);
    if (!body) return tooLarge(c);
    // hono keeps body promises in bodyCache (typed as the methods); text is
    // decoded once here as Response#text() would (UTF-8, BOM dropped), so
    // neither needs a Response made to convert the other.
    const cache = c.req.bodyCache as Record<string, Promise<unknown>>;
    cache.arrayBuffer = Promise.resolve(body.buffer);
    cache.text = Promise.resolve(decoder.decode(body));
    return next();
  };
}
