import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The request id of the work in progress, carried across awaits: the lease
 * event's id while its event is applied (the hook sends `x-request-id` =
 * eventId), or an operator request's id for the deprovision it queued. The
 * logger adds it to every line (pino `mixin`), and the agent client passes it
 * on as `x-request-id`, so one id follows an event from the hook through the
 * orchestrator to unionize.
 */
const context = new AsyncLocalStorage<string>();

export const REQUEST_ID_HEADER = 'x-request-id';

/** Run `fn` (and everything it awaits) with `requestId` as the current id. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return context.run(requestId, fn);
}

export function currentRequestId(): string | undefined {
  return context.getStore();
}

/** For pino's `mixin`: `{ requestId }` inside a request's work, nothing outside. */
export function requestIdMixin(): { requestId?: string } {
  const requestId = context.getStore();
  return requestId ? { requestId } : {};
}
