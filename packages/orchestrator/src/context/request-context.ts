import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

/**
 * The work in progress, carried across awaits: made at the API edge for each
 * request (its `x-request-id`, or the lease event's id, which the hook sends
 * as `x-request-id`), it follows the work through the journal and the
 * per-client queue to the life cycle, the agent calls (the agent client sends
 * its id as `x-request-id`, so unionize logs it too) and every log line
 * (pino `mixin`). A lease event journaled before a restart gets a context of
 * its own when it is applied.
 */
export interface RequestContext {
  readonly requestId: string;
  /** When the work began, on performance.now()'s clock (ms): at the API edge, or when work without a request began. */
  readonly startedAt: number;
}

const storage = new AsyncLocalStorage<RequestContext>();

export const REQUEST_ID_HEADER = 'x-request-id';

/** Run `fn` (and everything it awaits) as a new request's work, begun now: the API edge. */
export function beginRequest<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId, startedAt: performance.now() }, fn);
}

/** Run `fn` (and everything it awaits) as work of `requestId`: its time runs from the work it continues, or from now. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId, startedAt: storage.getStore()?.startedAt ?? performance.now() }, fn);
}

/** Run `fn` outside any request's work: timers it sets carry no request's id (background work that outlives one). */
export function outsideRequests<T>(fn: () => T): T {
  return storage.exit(fn);
}

/** The current work's context; undefined outside any. */
export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** Milliseconds since the current work began (whole ms); undefined outside any. */
export function elapsedMs(): number | undefined {
  const context = storage.getStore();
  return context ? Math.round(performance.now() - context.startedAt) : undefined;
}

/** For pino's `mixin`: `{ requestId }` inside a request's work, nothing outside. */
export function requestIdMixin(): { requestId?: string } {
  const requestId = storage.getStore()?.requestId;
  return requestId ? { requestId } : {};
}
