import type { Context } from 'hono';
import type { z } from 'zod';
import { invalidRequest } from '@unionize/protocol';

/** Validate a request's query string like a body: a 400 naming the bad parameter. */
export function query<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw invalidRequest(parsed.error, 'query');
  return parsed.data;
}
