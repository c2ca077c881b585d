import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError, invalidRequest } from '@unionize/protocol';

/** Validate a request's query string like a body: a 400 naming the bad parameter. */
export function query<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw invalidRequest(parsed.error, 'query');
  return parsed.data;
}

/** A JSON request body checked with its schema: a 400 that says what is wrong otherwise (`what`: e.g. `ban request`). */
export async function body<S extends z.ZodType>(c: Context, schema: S, what: string): Promise<z.output<S>> {
  let json: unknown;
  try {
    json = JSON.parse(await c.req.text());
  } catch {
    throw new ApiError(400, 'INVALID_JSON', 'body is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw invalidRequest(parsed.error, what);
  return parsed.data;
}
