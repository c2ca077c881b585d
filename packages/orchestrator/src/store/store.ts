import type { BanTarget } from '@unionize/protocol';
import type { SyncStore } from './sync-store.js';
import type { AgentRecord, BanRecord, AppliedMark, ClientListFilter, ClientRecord, ClientState, EventRecord, InstanceFilter, InstanceRecord, KeptRecord, ServerRecord, ShareRecord, TransitionRecord } from './types.js';

/**
 * Everything the orchestrator remembers. Asynchronous, so that a store may sit
 * across a network (PostgreSQL); memory and SQLite answer at once through
 * AsyncStore. One shared test suite (store.contract.ts) runs against each.
 */
export interface Store {
  /**
   * Run several writes as one (SQLite: one transaction; memory: as is). `fn`
   * only records them on `tx`, without waiting and without reading: nothing
   * else can run between them, so a read-then-write that must be one step is
   * a store method of its own (allocateAddress, writeJournal, useShare).
   */
  transaction(fn: (tx: StoreWrites) => void): Promise<void>;

  /** Journal an event, durable when it returns (its own commit, synced); `duplicate` when its eventId is known already (nothing is written then). */
  appendEvent(record: EventRecord): Promise<{ duplicate: boolean }>;
  /**
   * The journal's writes of one turn of the event loop in one commit (the
   * dispatcher's group commit): journal `events` in order, `duplicate` for each
   * whose eventId is known already or came earlier in the list (nothing is
   * written for it), and mark `applied` ones. All or nothing: when it throws,
   * nothing was written. Not durable by itself: the events are on disk once a
   * syncJournal() asked for after it resolves.
   */
  writeJournal(events: readonly EventRecord[], applied: readonly AppliedMark[]): Promise<{ duplicate: boolean }[]>;
  /**
   * Resolves when every journal commit made before the call is on disk (a
   * power cut included); one sync serves every caller waiting for it (SQLite:
   * an fdatasync of the WAL file, off the event loop; memory: at once).
   */
  syncJournal(): Promise<void>;
  /** Not durable by itself (SQLite: synchronous=NORMAL): a power cut may lose it, and the event is applied again at start. */
  markEventApplied(mark: AppliedMark): Promise<void>;
  /** Events not yet applied, oldest first. */
  unappliedEvents(): Promise<EventRecord[]>;
  /** Newest first. */
  recentEvents(limit: number): Promise<EventRecord[]>;
  /**
   * Rows kept aside because they could not be read (a journal payload that
   * is not a lease event): SQLite moves such a row to its quarantine table
   * when it meets it, instead of failing; the memory store has none.
   */
  quarantinedRows(): Promise<number>;
  /** Forget applied events older than the newest `keep`; returns how many went. */
  pruneEvents(keep: number): Promise<number>;

  getClient(id: string): Promise<ClientRecord | undefined>;
  putClient(client: ClientRecord): Promise<void>;
  /** Every client, or fewer retired ones (ClientListFilter): reading a retired client may cost more than another. */
  listClients(filter?: ClientListFilter): Promise<ClientRecord[]>;
  /** Clients whose leased address is `address`, however either is spelled (GET /v1/whoami), but the retired (isRetired): from an index. */
  clientsWithAddress(address: string): Promise<ClientRecord[]>;
  /** The clients of one device (its DHCP server and DUID: one per IAID), in any state but retired (isRetired): from an index. */
  deviceClients(server: string, duid: string): Promise<ClientRecord[]>;
  /** Up to `limit` clients with ids after `after`, ordered by id (paging). */
  listClientsPage(after: string | null, limit: number): Promise<ClientRecord[]>;
  /** Clients in each life-cycle state (every state, 0 for none), without reading every client. */
  clientsPerState(): Promise<Record<ClientState, number>>;
  addTransition(transition: TransitionRecord): Promise<void>;
  /**
   * Forget up to `limit` clients that are gone and have been since before
   * `before` (their updatedAt), with their transitions ([retention]
   * gone_days); returns how many went.
   */
  pruneGoneClients(before: string, limit: number): Promise<number>;
  /** Newest first. */
  listTransitions(clientId: string, limit: number): Promise<TransitionRecord[]>;

  touchServer(server: ServerRecord): Promise<void>;
  listServers(): Promise<ServerRecord[]>;

  putAgent(agent: AgentRecord): Promise<void>;
  listAgents(): Promise<AgentRecord[]>;

  getInstance(clientId: string): Promise<InstanceRecord | undefined>;
  /** The instance whose container has this MAC (dhcp addressing binds instance leases by MAC). */
  findInstanceByMac(mac: string): Promise<InstanceRecord | undefined>;
  putInstance(instance: InstanceRecord): Promise<void>;
  deleteInstance(clientId: string): Promise<void>;
  listInstances(): Promise<InstanceRecord[]>;
  /**
   * How many instances there are in all, or matching `filter` (placement and
   * quotas ask before every new container): from indexes, never by reading
   * every instance.
   */
  countInstances(filter?: InstanceFilter): Promise<number>;
  /** Instances per agent; agents with none are absent. */
  instancesPerAgent(): Promise<Map<string, number>>;

  /** The address allocated to a client, drawing a free one at random the first time (stable while it is held); undefined when no free one was drawn. */
  allocateAddress(clientId: string): Promise<string | undefined>;
  /** Record an address found in use (e.g. on a container adopted from an agent); false if another client holds it. */
  claimAddress(clientId: string, address: string): Promise<boolean>;
  releaseAddress(clientId: string): Promise<void>;

  /** Record a ban, or replace the one on the same device. */
  putBan(ban: BanRecord): Promise<void>;
  /** False when the device was not banned. */
  deleteBan(target: BanTarget): Promise<boolean>;
  /** Every ban recorded, ended ones included until they are deleted. */
  listBans(): Promise<BanRecord[]>;

  putKept(kept: KeptRecord): Promise<void>;
  deleteKept(image: string): Promise<void>;
  /** Oldest first; one client's, or all. */
  listKept(clientId?: string): Promise<KeptRecord[]>;

  putShare(share: ShareRecord): Promise<void>;
  getShare(tokenHash: string): Promise<ShareRecord | undefined>;
  /** Marks the share used at `at`; true only for the first (a link serves once). */
  useShare(tokenHash: string, at: string): Promise<boolean>;
  deleteShare(tokenHash: string): Promise<void>;
  listShares(): Promise<ShareRecord[]>;

  /**
   * Give back memory held for what is gone, when the daemon is idle (the
   * memory trim, memory/idle-trim.ts): the memory store rebuilds its maps at
   * their size, SQLite frees what its page cache can.
   */
  compactMemory(): Promise<void>;
  close(): Promise<void>;
}

/** The writes a transaction may hold. */
export type StoreWrites = Pick<SyncStore, 'putClient' | 'addTransition' | 'touchServer' | 'putInstance' | 'deleteInstance' | 'releaseAddress' | 'putKept' | 'deleteKept'>;
