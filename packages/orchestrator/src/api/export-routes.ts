import { Readable } from 'node:stream';
import type { Env, Hono } from 'hono';
import { ApiError, EXPORT_CONTENT_TYPE, noQuery } from '@unionize/protocol';
import type { AgentClient } from '../agents/agent-client.js';
import { exportSourceOf, openExport } from '../exports/export-source.js';
import type { Store } from '../store/store.js';
import { query } from './queries.js';

/** The HTTP answer for an export stream: gzip, as a download; no length (it is made as it is sent). */
export function exportResponse(stream: Readable, filename: string, extra: Record<string, string> = {}): Response {
  return new Response(Readable.toWeb(stream) as ReadableStream, {
    status: 200,
    headers: { 'content-type': EXPORT_CONTENT_TYPE, 'content-disposition': `attachment; filename="${filename}"`, ...extra },
  });
}

/** GET /v1/clients/:id/export: the client's live container, or else its newest kept image, as `docker save` (gzip), streamed through. */
export function registerExportRoutes<E extends Env>(app: Hono<E>, deps: { store: Store; agents: readonly AgentClient[] }): void {
  app.get('/v1/clients/:id/export', async (c) => {
    query(c, noQuery);
    const id = c.req.param('id');
    const source = await exportSourceOf(deps.store, id);
    if (!source) throw new ApiError(404, 'NOT_FOUND', `client ${id.slice(0, 40)} has no container and no kept image`);
    return exportResponse(await openExport(deps.agents, source), source.filename);
  });
}
