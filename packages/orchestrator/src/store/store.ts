import type { AgentRecord, ClientRecord, EventRecord, InstanceOwner, InstanceRecord, ServerRecord, TransitionRecord } from './types.js';

/**
 * Everything the orchestrator remembers. Synchronous: both implementations
 * (memory, and SQLite through better-sqlite3) answer without waiting, and one
 * shared test suite (store.contract.ts) runs against both.
 */
export interface Store {
  /** Run several writes as one (SQLite: one transaction; memory: as is). */
  transaction<T>(fn: () => T): T;

  /** Journal an event; `duplicate` when its eventId is known already (nothing is written then). */
  appendEvent(record: EventRecord): { duplicate: boolean };
  markEventApplied(eventId: string, appliedAt: string, outcome: string): void;
  /** Events not yet applied, oldest first. */
  unappliedEvents(): EventRecord[];
  /** Newest first. */
  recentEvents(limit: number): EventRecord[];
  /** Forget applied events beyond the newest `keep`; returns how many went. */
  pruneEvents(keep: number): number;

  getClient(id: string): ClientRecord | undefined;
  putClient(client: ClientRecord): void;
  listClients(): ClientRecord[];
  /** Up to `limit` clients with ids after `after`, ordered by id (paging). */
  listClientsPage(after: string | null, limit: number): ClientRecord[];
  addTransition(transition: TransitionRecord): void;
  /** Newest first. */
  listTransitions(clientId: string, limit: number): TransitionRecord[];

  touchServer(server: ServerRecord): void;
  listServers(): ServerRecord[];

  putAgent(agent: AgentRecord): void;
  listAgents(): AgentRecord[];

  getInstance(clientId: string): InstanceRecord | undefined;
  /** The instance whose container has this MAC (dhcp addressing binds instance leases by MAC). */
  findInstanceByMac(mac: string): InstanceRecord | undefined;
  putInstance(instance: InstanceRecord): void;
  deleteInstance(clientId: string): void;
  listInstances(): InstanceRecord[];
  /** Every instance with its client's MAC and device address, in one read (quotas count these). */
  listInstanceOwners(): InstanceOwner[];

  /** The address allocated to a client, allocating the lowest free one; undefined when the pool is exhausted. */
  allocateAddress(clientId: string): string | undefined;
  /** Record an address found in use (e.g. on a container adopted from an agent); false if another client holds it. */
  claimAddress(clientId: string, address: string): boolean;
  releaseAddress(clientId: string): void;

  close(): void;
}
