import { z } from 'zod';

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
