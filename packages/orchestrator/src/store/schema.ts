import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { BAN_KINDS, EVENT_OUTCOME_KINDS } from '@unionize/protocol';

/**
 * The orchestrator's SQLite schema. Migrations in ../../drizzle are generated
 * from this file (`npm run db:generate -w @unionize/orchestrator`) and applied at start.
 */

export const dhcpServers = sqliteTable('dhcp_servers', {
  name: text('name').primaryKey(),
  role: text('role').notNull(),
  firstSeen: text('first_seen').notNull(),
  lastSeen: text('last_seen').notNull(),
});

export const clients = sqliteTable(
  'clients',
  {
    id: text('id').primaryKey(),
    server: text('server').notNull(),
    role: text('role').notNull(),
    duid: text('duid').notNull(),
    iaid: text('iaid').notNull(),
    address: text('address').notNull(),
    hostname: text('hostname'),
    mac: text('mac'),
    state: text('state').notNull(),
    desired: text('desired').notNull(),
    stateReason: text('state_reason').notNull(),
    expiresAt: text('expires_at'),
    /** The profile the client's container was made from (null: the default). */
    profile: text('profile'),
    /** When the profile's TTL (self-destruct timer) runs out. */
    ttlExpiresAt: text('ttl_expires_at'),
    /** After a TTL ran out: no new container before this time. */
    cooldownUntil: text('cooldown_until'),
    firstSeen: text('first_seen').notNull(),
    lastSeen: text('last_seen').notNull(),
    updatedAt: text('updated_at').notNull(),
    /** The /64 of `address` (prefix64Of), kept by the store so quotas can count instances per /64 by index. */
    devicePrefix64: text('device_prefix64'),
    /** `address` in its one RFC 5952 spelling (canonicalIpv6), kept by the store so whoami finds a caller by index. */
    deviceAddress: text('device_address'),
  },
  (t) => [
    uniqueIndex('clients_key').on(t.server, t.duid, t.iaid),
    index('clients_state').on(t.state),
    index('clients_mac').on(t.mac),
    index('clients_device_address').on(t.deviceAddress),
    index('clients_device_prefix64').on(t.devicePrefix64),
  ],
);

export const clientTransitions = sqliteTable(
  'client_transitions',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    clientId: text('client_id')
      .notNull()
      .references(() => clients.id, { onDelete: 'cascade' }),
    fromState: text('from_state').notNull(),
    toState: text('to_state').notNull(),
    reason: text('reason').notNull(),
    at: text('at').notNull(),
  },
  (t) => [index('client_transitions_client').on(t.clientId, t.id)],
);

export const agents = sqliteTable('agents', {
  name: text('name').primaryKey(),
  url: text('url').notNull(),
  healthy: integer('healthy', { mode: 'boolean' }).notNull(),
  checkedAt: text('checked_at').notNull(),
  /** Since when health checks fail (null while healthy). */
  unhealthySince: text('unhealthy_since'),
  /** A draining agent gets no new clients. */
  draining: integer('draining', { mode: 'boolean' }).notNull().default(false),
});

export const instances = sqliteTable(
  'instances',
  {
  clientId: text('client_id')
    .primaryKey()
    .references(() => clients.id, { onDelete: 'cascade' }),
  agent: text('agent').notNull(),
  containerName: text('container_name').notNull().unique(),
  containerId: text('container_id').notNull(),
  address: text('address').notNull(),
  mac: text('mac').notNull(),
  image: text('image').notNull(),
  createdAt: text('created_at').notNull(),
  },
  (t) => [index('instances_mac').on(t.mac), index('instances_agent').on(t.agent)],
);

/** Static IPAM: one row per allocated host offset in the container /64. */
export const addressPool = sqliteTable('address_pool', {
  offset: integer('offset').primaryKey(),
  clientId: text('client_id').notNull().unique(),
});

/**
 * The event journal: written before the 202, marked when applied. Indexed by
 * event_id (duplicates) and by what is unapplied; no index by client (nothing
 * asks, and each index is one more page written per event, issue 13).
 */
export const events = sqliteTable(
  'events',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    eventId: text('event_id').notNull().unique(),
    clientId: text('client_id').notNull(),
    receivedAt: text('received_at').notNull(),
    payload: text('payload').notNull(),
    appliedAt: text('applied_at'),
    outcome: text('outcome'),
    /** The outcome's kind (EVENT_OUTCOME_KINDS); rows applied before it existed were given theirs by migration 0005. */
    outcomeKind: text('outcome_kind', { enum: EVENT_OUTCOME_KINDS }),
  },
  (t) => [index('events_unapplied').on(t.appliedAt, t.seq)],
);

/**
 * Rows that could not be read (a journal payload that is not a lease event),
 * moved here from their table so the rest is served: the row as it was (JSON
 * of its columns), where from, and why. Kept until an operator removes them.
 */
export const quarantine = sqliteTable('quarantine', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  sourceTable: text('source_table').notNull(),
  /** The row's key in its table (an event's event_id). */
  rowId: text('row_id').notNull(),
  row: text('row').notNull(),
  reason: text('reason').notNull(),
  quarantinedAt: text('quarantined_at').notNull(),
});

/** Banned devices (orchestratorctl ban), by MAC or DUID; until null: until unbanned. */
export const bans = sqliteTable(
  'bans',
  {
    kind: text('kind', { enum: BAN_KINDS }).notNull(),
    value: text('value').notNull(),
    since: text('since').notNull(),
    until: text('until'),
  },
  (t) => [primaryKey({ columns: [t.kind, t.value] })],
);

/**
 * Kept images (profiles' `keep = true`): a device's container committed on
 * its agent when its lease ended. Not tied to the client row: a kept image
 * outlives its client; removed with the image (keep_days, keep_max_mb, by hand).
 */
export const keptImages = sqliteTable(
  'kept_images',
  {
    image: text('image').primaryKey(),
    imageId: text('image_id').notNull(),
    clientId: text('client_id').notNull(),
    agent: text('agent').notNull(),
    hostname: text('hostname').notNull(),
    profile: text('profile').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    createdAt: text('created_at').notNull(),
    /** When keep_days removes it; null: kept until removed otherwise. */
    expiresAt: text('expires_at'),
  },
  (t) => [index('kept_images_client').on(t.clientId)],
);

/** One-time download links (orchestratorctl share): the token's hash, never the token. */
export const shares = sqliteTable('shares', {
  tokenHash: text('token_hash').primaryKey(),
  clientId: text('client_id').notNull(),
  filename: text('filename').notNull(),
  sizeBytes: integer('size_bytes').notNull(),
  createdAt: text('created_at').notNull(),
  expiresAt: text('expires_at').notNull(),
  usedAt: text('used_at'),
});
