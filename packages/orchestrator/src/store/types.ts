import type { BanKind, ClientState, DesiredState, EventOutcomeKind, LeaseEvent, ServerRole } from '@unionize/protocol';

/**
 * Lease events the memory store journals unless told otherwise (`[sql]
 * memory_events`): enough for /v1/events (1,000 at most) and to recognise a
 * hook's retry of an event already taken; each costs about 0.8 KB. Here, not
 * in memory-store.ts, so that config.ts needs no store implementation.
 */
export const DEFAULT_MEMORY_EVENTS = 2_000;

/**
 * SQLite's page cache for the store's connection, in MiB (`[sql] cache_mb`).
 * better-sqlite3 builds SQLite with 16 MiB; pages beyond the cache are read
 * again through the kernel's page cache, which the kernel can give back
 * under pressure and the daemon's RSS does not hold.
 */
export const DEFAULT_SQL_CACHE_MB = 4;

/** The life-cycle states are the API's (protocol's orchestrator-api.ts). */
export { CLIENT_STATES, type ClientState } from '@unionize/protocol';

/** A DHCP client, keyed by (server, DUID, IAID); `id` is a hash of that key. */
export interface ClientRecord {
  id: string;
  server: string;
  role: ServerRole;
  duid: string;
  iaid: string;
  /** The device's leased address. */
  address: string;
  hostname: string | null;
  mac: string | null;
  state: ClientState;
  /** What the lease asks for: a running container, or none. Retries and the reconciler drive towards it. */
  desired: DesiredState;
  /** Why the client is in its state (the last transition's reason). */
  stateReason: string;
  expiresAt: string | null;
  /** The profile its container was made from; null for the default. */
  profile: string | null;
  /** When the profile's TTL (self-destruct timer) runs out; null without a TTL. */
  ttlExpiresAt: string | null;
  /** After a TTL ran out: no new container before this time. */
  cooldownUntil: string | null;
  firstSeen: string;
  lastSeen: string;
  updatedAt: string;
}

/**
 * A retired client: gone, wanting no container, and with no cooldown that a
 * sibling's lease must respect. Nothing acts on it any more; it is kept as
 * history until [retention] gone_days. Lookups by device or address
 * (deviceClients, clientsWithAddress) leave retired clients out, and so does
 * listClients when asked to (ClientListFilter), so a store may keep them in a
 * form that is cheap to hold and dearer to read (the memory store packs them).
 */
export function isRetired(client: Pick<ClientRecord, 'state' | 'desired' | 'cooldownUntil'>): boolean {
  return client.state === 'gone' && client.desired === 'removed' && client.cooldownUntil === null;
}

/**
 * Which retired clients listClients returns besides all the others: all of
 * them (true, the default), none (false: what the reconciler, pins and bans
 * read), or those retired (updatedAt) at or after `since` (the dashboard's
 * recently gone).
 */
export interface ClientListFilter {
  retired?: boolean | { since: string };
}

/** A client's container on an agent. */
export interface InstanceRecord {
  clientId: string;
  agent: string;
  containerName: string;
  containerId: string;
  /** eth1 address with prefix length, e.g. `fd00:3::100/64`. */
  address: string;
  mac: string;
  image: string;
  createdAt: string;
}

/** A journaled lease event. */
export interface EventRecord {
  eventId: string;
  clientId: string;
  receivedAt: string;
  event: LeaseEvent;
  appliedAt: string | null;
  /** What applying it did, in words (outcomeText); null until applied. */
  outcome: string | null;
  /** The same, as its kind: what code reads; null until applied. */
  outcomeKind: EventOutcomeKind | null;
}

/** That an event was applied, and how (markEventApplied's arguments, for writeJournal). */
export interface AppliedMark {
  eventId: string;
  appliedAt: string;
  outcome: string;
  outcomeKind: EventOutcomeKind;
}

/** One life-cycle transition of a client, with why it happened. */
export interface TransitionRecord {
  clientId: string;
  from: ClientState;
  to: ClientState;
  reason: string;
  at: string;
}

/** A DHCP server that has sent events. */
export interface ServerRecord {
  name: string;
  role: ServerRole;
  firstSeen: string;
  lastSeen: string;
}

/** A unionize agent's health as the orchestrator last saw it. */
export interface AgentRecord {
  name: string;
  url: string;
  healthy: boolean;
  checkedAt: string;
  /** Since when its health checks fail; null while healthy. */
  unhealthySince: string | null;
  draining: boolean;
}

/**
 * Which instances to count: one agent's, or those of the clients with this
 * device MAC, or of the clients whose device address is in this /64 (as
 * `prefix64Of` writes it, e.g. `fd00:1:0:0`).
 */
/** `{ mac: null }`: instances of clients whose MAC the DHCP server did not report, counted together. */
export type InstanceFilter = { agent: string } | { mac: string | null } | { prefix64: string };

/** A banned device (orchestratorctl ban), by MAC or DUID (lower case, colon-separated). */
export interface BanRecord {
  kind: BanKind;
  value: string;
  since: string;
  /** When it ends; null: until unbanned. */
  until: string | null;
}

/** A container kept as an image on its agent when the lease ended (profiles' `keep = true`). */
export interface KeptRecord {
  /** `unionize-kept/CLIENT:TAG`. */
  image: string;
  /** Docker's image id, without `sha256:`. */
  imageId: string;
  clientId: string;
  agent: string;
  hostname: string;
  profile: string;
  sizeBytes: number;
  createdAt: string;
  /** When keep_days removes it; null: no time bound. */
  expiresAt: string | null;
}

/**
 * A one-time download link (orchestratorctl share): the client's export,
 * spooled on the orchestrator; the link's token is kept only as its SHA-256.
 */
export interface ShareRecord {
  /** Hex SHA-256 of the link's token: the token itself is never stored. */
  tokenHash: string;
  clientId: string;
  filename: string;
  sizeBytes: number;
  createdAt: string;
  expiresAt: string;
  /** When it was downloaded; a used link serves nothing more. */
  usedAt: string | null;
}

/**
 * A client's device (its DHCP server and DUID), as one key: the store indexes
 * clients by it, and the dispatcher queues a device's work under it, so
 * the clients of one device (its IA_NA, a second IA_NA, an IA_TA, which
 * dnsmasq reports one after the other from one exchange) are applied one at
 * a time, in order, and one device never gets two containers at once.
 */
export function deviceKeyOf(client: { server: string; duid: string }): string {
  return `${client.server} ${client.duid}`;
}

/** A row moved to the quarantine table: its table, its key there, and why it could not be read. */
export interface QuarantinedRow {
  table: string;
  id: string;
  reason: string;
}
