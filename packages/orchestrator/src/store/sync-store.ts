import type { Store } from './store.js';

/**
 * A store that answers without waiting (memory, and SQLite through
 * better-sqlite3): each Store method, returning its answer itself. AsyncStore
 * (async-store.ts) makes one a Store. Each method is one step: a
 * read-then-write inside one method (address allocation, event append,
 * useShare) cannot interleave with another caller's.
 */
export type SyncStore = {
  [K in Exclude<keyof Store, 'transaction' | 'syncJournal'>]: Store[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : never;
} & {
  /** Run several writes as one (SQLite: one transaction; memory: as is); `fn` must not wait. */
  transaction<T>(fn: () => T): T;
  syncJournal: Store['syncJournal'];
};
