import { bigint, bigserial, boolean, index, integer, pgTable, primaryKey, serial, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { BAN_KINDS, EVENT_OUTCOME_KINDS } from '@unionize/protocol';

/**
 * The orchestrator's PostgreSQL schema: the SQLite schema (../schema.ts), table
 * for table and index for index, in PostgreSQL's types, and one table of its
 * own (leadership). Migrations in ../../../drizzle-postgres are generated from
 * this file (`npm run db:generate:postgres -w @unionize/orchestrator`) and
 * applied at start (postgres/migrate.ts).
 *
 * Times are ISO 8601 text, as in SQLite: the same strings sort the same way in
 * both, and every reader of a record gets back the string it stored.
 */

export const dhcpServers = pgTable('dhcp_servers', {
  name: text('name').primaryKey(),
  role: text('role').notNull(),
  firstSeen: text('first_seen').notNull(),
  lastSeen: text('last_seen').notNull(),
});

export const clients = pgTable(
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
    profile: text('profile'),
    ttlExpiresAt: text('ttl_expires_at'),
    cooldownUntil: text('cooldown_until'),
    firstSeen: text('first_seen').notNull(),
    lastSeen: text('last_seen').notNull(),
    updatedAt: text('updated_at').notNull(),
    devicePrefix64: text('device_prefix64'),
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

export const clientTransitions = pgTable(
  'client_transitions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
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

export const agents = pgTable('agents', {
  name: text('name').primaryKey(),
  url: text('url').notNull(),
  healthy: boolean('healthy').notNull(),
  checkedAt: text('checked_at').notNull(),
  unhealthySince: text('unhealthy_since'),
  draining: boolean('draining').notNull().default(false),
});

export const instances = pgTable(
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

/** Static IPAM: one row per allocated host offset (up to 2^52, ipv6.ts) in the container /64. */
export const addressPool = pgTable('address_pool', {
  offset: bigint('offset', { mode: 'number' }).primaryKey(),
  clientId: text('client_id').notNull().unique(),
});

/** The event journal, shared by the orchestrators on this database. */
export const events = pgTable(
  'events',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    eventId: text('event_id').notNull().unique(),
    clientId: text('client_id').notNull(),
    receivedAt: text('received_at').notNull(),
    payload: text('payload').notNull(),
    appliedAt: text('applied_at'),
    outcome: text('outcome'),
    outcomeKind: text('outcome_kind', { enum: EVENT_OUTCOME_KINDS }),
  },
  (t) => [index('events_unapplied').on(t.appliedAt, t.seq)],
);

export const quarantine = pgTable('quarantine', {
  id: serial('id').primaryKey(),
  sourceTable: text('source_table').notNull(),
  rowId: text('row_id').notNull(),
  row: text('row').notNull(),
  reason: text('reason').notNull(),
  quarantinedAt: text('quarantined_at').notNull(),
});

export const bans = pgTable(
  'bans',
  {
    kind: text('kind', { enum: BAN_KINDS }).notNull(),
    value: text('value').notNull(),
    since: text('since').notNull(),
    until: text('until'),
  },
  (t) => [primaryKey({ columns: [t.kind, t.value] })],
);

export const keptImages = pgTable(
  'kept_images',
  {
    image: text('image').primaryKey(),
    imageId: text('image_id').notNull(),
    clientId: text('client_id').notNull(),
    agent: text('agent').notNull(),
    hostname: text('hostname').notNull(),
    profile: text('profile').notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    createdAt: text('created_at').notNull(),
    expiresAt: text('expires_at'),
  },
  (t) => [index('kept_images_client').on(t.clientId)],
);

export const shares = pgTable('shares', {
  tokenHash: text('token_hash').primaryKey(),
  clientId: text('client_id').notNull(),
  filename: text('filename').notNull(),
  sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
  createdAt: text('created_at').notNull(),
  expiresAt: text('expires_at').notNull(),
  usedAt: text('used_at'),
});

/**
 * Who leads (one row, id 1): the orchestrators on this database take turns by
 * an advisory lock (leadership/leadership.ts); each new leader adds one to
 * `epoch`, and every write a leader makes checks that the epoch is still its
 * own, so one deposed cannot write after its successor started.
 */
export const leadership = pgTable('leadership', {
  id: integer('id').primaryKey(),
  epoch: bigint('epoch', { mode: 'number' }).notNull(),
  holder: text('holder').notNull(),
  url: text('url'),
  since: text('since').notNull(),
});
