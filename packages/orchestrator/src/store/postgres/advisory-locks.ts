/**
 * The advisory locks the orchestrators take on their database, each as
 * (ADVISORY_LOCK_CLASS, key): the class keeps them apart from any other
 * program's locks on the same database.
 */
export const ADVISORY_LOCK_CLASS = 0x756e_696f; // "unio"

/** Held while one orchestrator applies migrations: the other waits, then finds them applied. */
export const MIGRATION_LOCK = 1;

/** Held by the leader on a connection of its own, for as long as it leads. */
export const LEADERSHIP_LOCK = 2;

/**
 * Taken shared by each of the leader's writes, for its transaction; taken
 * exclusively, for a moment, by a new leader once its epoch is written: the
 * writes of the one before it that were under way end first, and any later
 * one reads the new epoch and is refused (postgres-store.ts, leadership.ts).
 */
export const FENCE_LOCK = 3;
