import type { Context } from 'hono';
import { z } from 'zod';
import { invalidRequest } from '@unionize/protocol';

/** Validate a request's query string like a body: a 400 naming the bad parameter. */
export function query<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw invalidRequest(parsed.error, 'query');
  return parsed.data;
}

/** Query strings are checked like bodies: unknown parameters and bad values are a 400. */
export const noQuery = z.object({}).strict();

export const eventsQuery = z
  .object({
    limit: z
      .string()
      .regex(/^[0-9]{1,4}$/, 'must be a number 1..1000')
      .transform(Number)
      .pipe(z.number().int().min(1).max(1000))
      .optional()
      .describe('How many of the newest events (1..1000, default 100)'),
  })
  .strict();

/** Paging through clients: ordered by id; `after` is the last id of the previous page. */
export const clientsQuery = z
  .object({
    limit: z
      .string()
      .regex(/^[0-9]{1,5}$/, 'must be a number 1..10000')
      .transform(Number)
      .pipe(z.number().int().min(1).max(10_000))
      .optional()
      .describe('Clients per page (1..10000); without it, every client'),
    after: z.string().regex(/^[0-9a-f]{20}$/, 'must be a client id').optional().describe('The last client id of the previous page'),
  })
  .strict();
