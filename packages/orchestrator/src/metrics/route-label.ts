import type { Context } from 'hono';
import { matchedRoutes } from 'hono/route';

/**
 * The route pattern that answered (`/v1/clients/:id`), for a metric label:
 * never the raw path, which a caller could make up without end.
 */
export function routeLabel(c: Context): string {
  const handler = matchedRoutes(c).filter((r) => r.method !== 'ALL').at(-1);
  return handler?.path ?? 'unmatched';
}
