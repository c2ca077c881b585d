import { Readable } from 'node:stream';
import type { Env, Hono } from 'hono';
import { ApiError, EXPORT_CONTENT_TYPE, noQuery, shareRequestSchema } from '@unionize/protocol';
import type { Shares } from '../shares/shares.js';
import { body, query } from './queries.js';

const clientIdPattern = /^[0-9a-f]{20}$/;

/** POST /v1/clients/:id/shares (signed, an operator's): a one-time download link of the client's export. 404 when [share] dir is unset. */
export function registerShareRoutes<E extends Env>(app: Hono<E>, deps: { shares: Shares | undefined }): void {
  app.post('/v1/clients/:id/shares', async (c) => {
    query(c, noQuery);
    const id = c.req.param('id');
    if (!deps.shares) throw new ApiError(404, 'SHARES_OFF', 'share links are off: set [share] dir in orchestrator.ini');
    if (!clientIdPattern.test(id)) throw new ApiError(404, 'NOT_FOUND', `no client ${id.slice(0, 40)}`);
    const request = await body(c, shareRequestSchema, 'share request');
    return c.json(await deps.shares.create(id, request.seconds, new URL(c.req.url).origin), 201);
  });
}

/**
 * GET /shared/:token: unsigned, for the visitor the operator gave the link
 * to; the token is the only right to it. The export, once, with its length.
 */
export function registerSharedDownload<E extends Env>(app: Hono<E>, deps: { shares: Shares | undefined }): void {
  app.get('/shared/:token', async (c) => {
    query(c, noQuery);
    if (!deps.shares) throw new ApiError(404, 'NOT_FOUND', 'no such link');
    const download = await deps.shares.download(c.req.param('token'));
    download.stream.once('close', download.done);
    return new Response(Readable.toWeb(download.stream) as ReadableStream, {
      status: 200,
      headers: {
        'content-type': EXPORT_CONTENT_TYPE,
        'content-length': String(download.sizeBytes),
        'content-disposition': `attachment; filename="${download.filename}"`,
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      },
    });
  });
}
