import type { ClientRecord, EventRecord, InstanceRecord } from './types.js';

/**
 * Everything the orchestrator remembers. Synchronous: both implementations
 * (memory, and SQLite through better-sqlite3) answer without waiting.
 */
export interface Store {
  /** Journal an event; `duplicate` when its eventId is known already (nothing is written then). */
  appendEvent(record: EventRecord): { duplicate: boolean };
  markEventApplied(eventId: string, appliedAt: string, outcome: string): void;
  /** Events not yet applied, oldest first. */
  unappliedEvents(): EventRecord[];
  /** Newest first. */
  recentEvents(limit: number): EventRecord[];

  getClient(id: string): ClientRecord | undefined;
  putClient(client: ClientRecord): void;
  listClients(): ClientRecord[];

  getInstance(clientId: string): InstanceRecord | undefined;
  putInstance(instance: InstanceRecord): void;
  deleteInstance(clientId: string): void;
  listInstances(): InstanceRecord[];

  /** The address allocated to a client, allocating the lowest free one; undefined when the pool is exhausted. */
  allocateAddress(clientId: string): string | undefined;
  releaseAddress(clientId: string): void;
}
