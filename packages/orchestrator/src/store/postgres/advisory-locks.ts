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
