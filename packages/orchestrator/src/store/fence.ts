/**
 * The leadership epoch this process holds (leadership/leadership.ts), checked
 * by every write of the shared store (postgres/postgres-store.ts): undefined
 * while it holds none. Apart from both, so that what only needs these (the
 * API) does not load node-postgres.
 */
export interface WriteFence {
  epoch(): number | undefined;
}

/** A write or agent call refused because this process does not lead (any more); the API answers 503. */
export class NotLeaderError extends Error {
  constructor(detail: string) {
    super(`not the leader: ${detail}`);
    this.name = 'NotLeaderError';
  }
}
