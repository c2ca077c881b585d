import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import type { ApiErrorBody } from './agent-api.js';

/** An error with a stable code and an HTTP status; the error handler renders it. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function errorBody(code: string, message: string): ApiErrorBody {
  return { error: { code, message } };
}

export function invalidRequest(error: ZodError, what = 'request body'): ApiError {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return new ApiError(400, 'INVALID_REQUEST', `invalid ${what}: ${where}${issue?.message ?? 'invalid'}`);
}

interface LogLike {
  error(obj: object, msg: string): void;
}

/** One error handler for both daemons: `{ error: { code, message } }` with the right status. */
export function jsonErrorHandler(log: LogLike): ErrorHandler {
  return function handleError(err: Error, c: Context) {
    if (err instanceof ApiError) return c.json(errorBody(err.code, err.message), err.status);
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      return c.json(errorBody(status === 413 ? 'BODY_TOO_LARGE' : 'HTTP_ERROR', err.message || 'request refused'), status);
    }
    log.error({ err, method: c.req.method, path: c.req.path }, 'unhandled error');
    return c.json(errorBody('INTERNAL', 'internal error'), 500);
  };
}

export const jsonNotFound: NotFoundHandler = (c) => c.json(errorBody('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), 404);
