import { and, asc, count, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, ne, or, sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { BanTarget } from '@unionize/protocol';
import type { Store, StoreWrites } from '../store.js';
import { CLIENT_STATES, type AgentRecord, type AppliedMark, type BanRecord, type ClientListFilter, type ClientRecord, type ClientState, type EventRecord, type InstanceFilter, type InstanceRecord, type KeptRecord, type QuarantinedRow, type ServerRecord, type ShareRecord, type TransitionRecord } from '../types.js';
import { FIRST_POOL_OFFSET, LAST_POOL_OFFSET, Prefix64, canonicalIpv6, poolDraws, prefix64Of, randomPoolOffset, type DrawOffset } from '../ipv6.js';
import { applyMigrations } from './migrate.js';
import { ADVISORY_LOCK_CLASS, FENCE_LOCK } from './advisory-locks.js';
import { eventRow, toClient, toEvent } from '../rows.js';
import * as schema from './schema.js';
import { NotLeaderError, type WriteFence } from '../fence.js';

/** A fenced write's first round trip: BEGIN, the fence's lock (shared), then the epoch (read once the lock is held). */
const FENCED_BEGIN = `BEGIN; SELECT pg_advisory_xact_lock_shared(${ADVISORY_LOCK_CLASS}, ${FENCE_LOCK}); SELECT epoch FROM leadership WHERE id = 1`;

/**
 * The journal's statements, prepared once per connection (named): the batch's
 * rows as one array per column (node-postgres sends a JavaScript array as a
 * PostgreSQL array), inserted in their order, a known event_id skipped.
 */
const JOURNAL_INSERT = `INSERT INTO events (event_id, client_id, received_at, payload, applied_at, outcome, outcome_kind)
  SELECT e.event_id, e.client_id, e.received_at, e.payload, e.applied_at, e.outcome, e.outcome_kind
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
    WITH ORDINALITY AS e(event_id, client_id, received_at, payload, applied_at, outcome, outcome_kind, n)
  ORDER BY e.n
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id`;
const JOURNAL_MARK = `UPDATE events SET applied_at = m.applied_at, outcome = m.outcome, outcome_kind = m.outcome_kind
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS m(event_id, applied_at, outcome, outcome_kind)
  WHERE events.event_id = m.event_id`;

/** PostgreSQL's deadlock_detected and serialization_failure: the transaction may run again. */
const RETRYABLE = new Set(['40P01', '40001']);
const TRANSACTION_ATTEMPTS = 3;

/** Each connection of the pool: see PostgresStore.open. */
const SESSION_SETTINGS = '-c idle_in_transaction_session_timeout=15000 -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3';

/** What statements run on: the pool, or one transaction. */
type Db = Pick<NodePgDatabase<typeof schema>, 'select' | 'insert' | 'update' | 'delete' | 'execute'>;

/** Not isRetired(client), in SQL (as in the SQLite store; the contract suite holds them together). */
const NOT_RETIRED = or(ne(schema.clients.state, 'gone'), ne(schema.clients.desired, 'removed'), isNotNull(schema.clients.cooldownUntil));

export interface PostgresStoreOptions {
  /** Where and as whom (node-postgres: host is a socket folder or an address; the password read from its file). */
  connection: pg.PoolConfig;
  prefix?: string;
  drawOffset?: DrawOffset;
  /** When given, each write runs in a transaction that first checks the leadership epoch (a deposed leader writes nothing). */
  fence?: WriteFence;
  onQuarantine?: (row: QuarantinedRow) => void;
  /** Told of an error on a connection of the pool (the database restarted, say); the pool opens a new one when next asked. */
  onIdleError?: (error: Error) => void;
}

/**
 * The shared store: PostgreSQL through drizzle-orm and node-postgres, for
 * two orchestrators on one database (one leads, leadership/). Made with
 * PostgresStore.open, which applies the migrations (migrate.ts).
 *
 * Two writers. Nothing is read and then written on what was read: an event
 * is journaled once by its unique event_id (ON CONFLICT DO NOTHING), an
 * address is taken by inserting its offset (the primary key decides who
 * has it), a share is used by one UPDATE ... WHERE used_at IS NULL.
 *
 * Durability. A commit is durable when it returns (synchronous_commit on,
 * PostgreSQL's default: keep it): syncJournal has nothing left to wait for.
 */
export class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  readonly #db: NodePgDatabase<typeof schema>;
  readonly #prefix: Prefix64 | undefined;
  readonly #drawOffset: DrawOffset;
  readonly #fence: WriteFence | undefined;
  readonly #onQuarantine: (row: QuarantinedRow) => void;
  readonly #perClient = new WeakMap<pg.PoolClient, Db>();
  readonly #getClient;

  private constructor(pool: pg.Pool, options: PostgresStoreOptions) {
    this.#pool = pool;
    this.#db = drizzle(pool, { schema });
    this.#getClient = this.#db.select().from(schema.clients).where(eq(schema.clients.id, sql.placeholder('id'))).prepare('get_client');
    this.#prefix = options.prefix === undefined ? undefined : new Prefix64(options.prefix);
    this.#drawOffset = options.drawOffset ?? randomPoolOffset;
    this.#fence = options.fence;
    this.#onQuarantine = options.onQuarantine ?? (() => {});
  }

  /** Connects, applies what migrations are missing (one orchestrator at a time), and answers the store. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    await applyMigrations(options.connection);
    const pool = new pg.Pool({
      ...options.connection,
      // A connection whose other end vanished is noticed (keepalives both ways), and a transaction left open by a
      // leader that hung or lost its network ends, so it holds nothing (the fence's lock) from its successor for long.
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
      options: [options.connection.options, SESSION_SETTINGS].filter(Boolean).join(' '),
    });
    const onError = (error: Error) => options.onIdleError?.(error);
    pool.on('error', onError);
    // A connection in use that fails (the server restarted) says so to its own listeners only: without one, the process would end.
    pool.on('connect', (client) => client.on('error', onError));
    return new PostgresStore(pool, options);
  }

  /**
   * Runs `fn` as one write: in a transaction that checks the fence first when
   * there is one; as is (one statement on the pool) otherwise.
   */
  async #write<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    if (!this.#fence) return fn(this.#db);
    return this.#writeAll(fn);
  }

  /**
   * Runs `fn` in a transaction of its own, on one connection of the pool.
   * With a fence, the transaction begins by taking the fence's advisory lock
   * shared and then reading the epoch (one round trip: three statements, so
   * the epoch is read after the lock is held). A new leader takes that lock
   * exclusively once its epoch is written (leadership.ts): it waits for the
   * writes already under way, and any that begins after reads its epoch and
   * is refused. No row is locked: writers do not contend with each other.
   */
  async #writeAll<T>(fn: (db: Db, client: pg.PoolClient) => Promise<T>): Promise<T> {
    // Two transactions that wait on each other (two batches journaling the same events in other orders) are told
    // apart by the server, which fails one: that one runs again, whole (`fn` only writes what it was given).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#transactionOnce(fn);
      } catch (error) {
        if (attempt >= TRANSACTION_ATTEMPTS || !RETRYABLE.has((error as { code?: string }).code ?? '')) throw error;
      }
    }
  }

  async #transactionOnce<T>(fn: (db: Db, client: pg.PoolClient) => Promise<T>): Promise<T> {
    const fence = this.#fence;
    const mine = fence?.epoch();
    if (fence && mine === undefined) throw new NotLeaderError('this orchestrator holds no leadership');
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      if (fence) {
        const results = (await client.query(FENCED_BEGIN)) as unknown as pg.QueryResult<{ epoch: string }>[];
        const current = results[2]?.rows[0]?.epoch;
        if (current === undefined || Number(current) !== mine) throw new NotLeaderError(`epoch ${mine} was superseded by ${current ?? 'none'}`);
      } else {
        await client.query('BEGIN');
      }
      const result = await fn(this.#on(client), client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackFailed: Error) => {
        // The connection is gone: it leaves the pool.
        broken = rollbackFailed;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** drizzle on one connection (made once per connection of the pool). */
  #on(client: pg.PoolClient): Db {
    let db = this.#perClient.get(client);
    if (!db) {
      db = drizzle(client, { schema });
      this.#perClient.set(client, db);
    }
    return db;
  }

  async transaction(fn: (tx: StoreWrites) => void): Promise<void> {
    const writes: ((db: Db) => Promise<void>)[] = [];
    const later = <A extends unknown[]>(write: (db: Db, ...args: A) => Promise<void>) => (...args: A) => { writes.push((db) => write(db, ...args)); };
    fn({
      putClient: later(putClient),
      addTransition: later(addTransition),
      touchServer: later(touchServer),
      putInstance: later(putInstance),
      deleteInstance: later(deleteInstance),
      releaseAddress: later(releaseAddress),
      putKept: later(putKept),
      deleteKept: later(deleteKept),
    });
    if (writes.length === 0) return;
    await this.#writeAll(async (db) => {
      for (const write of writes) await write(db);
    });
  }

  async appendEvent(record: EventRecord): Promise<{ duplicate: boolean }> {
    return (await this.writeJournal([record], []))[0]!;
  }

  async writeJournal(events: readonly EventRecord[], applied: readonly AppliedMark[]): Promise<{ duplicate: boolean }[]> {
    if (events.length === 0 && applied.length === 0) return [];
    return this.#writeAll(async (_db, client) => {
      // One INSERT for the batch, in order: a row whose event_id is known, or came earlier in the batch, is skipped.
      let fresh = new Set<string>();
      if (events.length > 0) {
        const rows = events.map(eventRow);
        const columns = [rows.map((r) => r.eventId), rows.map((r) => r.clientId), rows.map((r) => r.receivedAt), rows.map((r) => r.payload), rows.map((r) => r.appliedAt), rows.map((r) => r.outcome), rows.map((r) => r.outcomeKind)];
        const inserted = await client.query<{ event_id: string }>({ name: 'journal_insert', text: JOURNAL_INSERT, values: columns });
        fresh = new Set(inserted.rows.map((row) => row.event_id));
      }
      const results = events.map((record) => ({ duplicate: !fresh.delete(record.eventId) }));
      if (applied.length > 0) await markApplied(client, applied);
      return results;
    });
  }

  async syncJournal(): Promise<void> {
    // Each journal commit was durable when it returned.
  }

  async markEventApplied(mark: AppliedMark): Promise<void> {
    await this.#writeAll((_db, client) => markApplied(client, [mark]));
  }

  async unappliedEvents(): Promise<EventRecord[]> {
    return (await this.#readEvents(await this.#db.select().from(schema.events).where(isNull(schema.events.appliedAt)).orderBy(asc(schema.events.seq)))).events;
  }

  async recentEvents(limit: number): Promise<EventRecord[]> {
    const { events, quarantined } = await this.#readEvents(await this.#db.select().from(schema.events).orderBy(desc(schema.events.seq)).limit(limit));
    return quarantined > 0 ? this.recentEvents(limit) : events;
  }

  async quarantinedRows(): Promise<number> {
    return (await this.#db.select({ n: count() }).from(schema.quarantine))[0]!.n;
  }

  /** The journal's rows as events; a row that is not one is moved to quarantine, and the rest are read. */
  async #readEvents(rows: (typeof schema.events.$inferSelect)[]): Promise<{ events: EventRecord[]; quarantined: number }> {
    const events: EventRecord[] = [];
    let quarantined = 0;
    for (const row of rows) {
      try {
        events.push(toEvent(row));
      } catch (error) {
        const reason = error instanceof Error ? error.message.slice(0, 1000) : String(error);
        await this.#writeAll(async (db) => {
          await db.insert(schema.quarantine).values({ sourceTable: 'events', rowId: row.eventId, row: JSON.stringify(row), reason, quarantinedAt: new Date().toISOString() });
          await db.delete(schema.events).where(eq(schema.events.seq, row.seq));
        });
        this.#onQuarantine({ table: 'events', id: row.eventId, reason });
        quarantined++;
      }
    }
    return { events, quarantined };
  }

  async pruneEvents(keep: number): Promise<number> {
    return this.#write(async (db) => {
      const [cutoff] = await db.select({ seq: schema.events.seq }).from(schema.events).orderBy(desc(schema.events.seq)).limit(1).offset(keep);
      if (!cutoff) return 0;
      const gone = await db.delete(schema.events).where(and(isNotNull(schema.events.appliedAt), lt(schema.events.seq, cutoff.seq + 1))).returning({ seq: schema.events.seq });
      return gone.length;
    });
  }

  async getClient(id: string): Promise<ClientRecord | undefined> {
    // Prepared once (asked for every lease event): built by drizzle once, parsed and planned once per connection.
    const [row] = await this.#getClient.execute({ id });
    return row && toClient(row);
  }

  async putClient(client: ClientRecord): Promise<void> {
    await this.#write((db) => putClient(db, client));
  }

  async listClients(filter: ClientListFilter = {}): Promise<ClientRecord[]> {
    const retired = filter.retired ?? true;
    const query = this.#db.select().from(schema.clients);
    const chosen = retired === true ? query : query.where(retired === false ? NOT_RETIRED : or(NOT_RETIRED, gte(schema.clients.updatedAt, retired.since)));
    return (await chosen.orderBy(asc(schema.clients.firstSeen), asc(schema.clients.id))).map(toClient);
  }

  async deviceClients(server: string, duid: string): Promise<ClientRecord[]> {
    return (await this.#db.select().from(schema.clients).where(and(eq(schema.clients.server, server), eq(schema.clients.duid, duid), NOT_RETIRED))).map(toClient);
  }

  async clientsWithAddress(address: string): Promise<ClientRecord[]> {
    const key = canonicalIpv6(address);
    if (key === null) return [];
    return (await this.#db.select().from(schema.clients).where(and(eq(schema.clients.deviceAddress, key), NOT_RETIRED))).map(toClient);
  }

  async listClientsPage(after: string | null, limit: number): Promise<ClientRecord[]> {
    const query = this.#db.select().from(schema.clients);
    return (await (after === null ? query : query.where(gt(schema.clients.id, after))).orderBy(asc(schema.clients.id)).limit(limit)).map(toClient);
  }

  async clientsPerState(): Promise<Record<ClientState, number>> {
    const counts = Object.fromEntries(CLIENT_STATES.map((s) => [s, 0])) as Record<ClientState, number>;
    const rows = await this.#db.select({ state: schema.clients.state, n: count() }).from(schema.clients).groupBy(schema.clients.state);
    for (const { state, n } of rows) if (state in counts) counts[state as ClientState] = n;
    return counts;
  }

  async addTransition(transition: TransitionRecord): Promise<void> {
    await this.#write((db) => addTransition(db, transition));
  }

  async listTransitions(clientId: string, limit: number): Promise<TransitionRecord[]> {
    const rows = await this.#db
      .select()
      .from(schema.clientTransitions)
      .where(eq(schema.clientTransitions.clientId, clientId))
      .orderBy(desc(schema.clientTransitions.id))
      .limit(limit);
    return rows.map((r) => ({ clientId: r.clientId, from: r.fromState as ClientState, to: r.toState as ClientState, reason: r.reason, at: r.at }));
  }

  async pruneGoneClients(before: string, limit: number): Promise<number> {
    return this.#writeAll(async (db) => {
      const gone = (await db
        .select({ id: schema.clients.id })
        .from(schema.clients)
        .where(and(eq(schema.clients.state, 'gone'), lt(schema.clients.updatedAt, before)))
        .limit(Math.min(limit, 10_000))).map((row) => row.id);
      if (gone.length === 0) return 0;
      // Their transitions and instances go with them (on delete cascade); their addresses were released when they went.
      await db.delete(schema.addressPool).where(inArray(schema.addressPool.clientId, gone));
      return (await db.delete(schema.clients).where(inArray(schema.clients.id, gone)).returning({ id: schema.clients.id })).length;
    });
  }

  async touchServer(server: ServerRecord): Promise<void> {
    await this.#write((db) => touchServer(db, server));
  }

  async listServers(): Promise<ServerRecord[]> {
    return (await this.#db.select().from(schema.dhcpServers).orderBy(asc(schema.dhcpServers.name))) as ServerRecord[];
  }

  async putBan(ban: BanRecord): Promise<void> {
    const { kind: _kind, value: _value, ...rest } = ban;
    await this.#write(async (db) => {
      await db.insert(schema.bans).values(ban).onConflictDoUpdate({ target: [schema.bans.kind, schema.bans.value], set: rest });
    });
  }

  async deleteBan(target: BanTarget): Promise<boolean> {
    return this.#write(async (db) => (await db.delete(schema.bans).where(and(eq(schema.bans.kind, target.kind), eq(schema.bans.value, target.value))).returning({ kind: schema.bans.kind })).length > 0);
  }

  async listBans(): Promise<BanRecord[]> {
    return this.#db.select().from(schema.bans).orderBy(asc(schema.bans.since), asc(schema.bans.value));
  }

  async putAgent(agent: AgentRecord): Promise<void> {
    const { name: _name, ...rest } = agent;
    await this.#write(async (db) => {
      await db.insert(schema.agents).values(agent).onConflictDoUpdate({ target: schema.agents.name, set: rest });
    });
  }

  async listAgents(): Promise<AgentRecord[]> {
    return this.#db.select().from(schema.agents).orderBy(asc(schema.agents.name));
  }

  async findInstanceByMac(mac: string): Promise<InstanceRecord | undefined> {
    return (await this.#db.select().from(schema.instances).where(eq(schema.instances.mac, mac)).limit(1))[0];
  }

  async getInstance(clientId: string): Promise<InstanceRecord | undefined> {
    return (await this.#db.select().from(schema.instances).where(eq(schema.instances.clientId, clientId)))[0];
  }

  async putInstance(instance: InstanceRecord): Promise<void> {
    await this.#write((db) => putInstance(db, instance));
  }

  async deleteInstance(clientId: string): Promise<void> {
    await this.#write((db) => deleteInstance(db, clientId));
  }

  async listInstances(): Promise<InstanceRecord[]> {
    return this.#db.select().from(schema.instances).orderBy(asc(schema.instances.containerName));
  }

  async countInstances(filter?: InstanceFilter): Promise<number> {
    const { instances, clients } = schema;
    if (!filter) return (await this.#db.select({ n: count() }).from(instances))[0]!.n;
    if ('agent' in filter) return (await this.#db.select({ n: count() }).from(instances).where(eq(instances.agent, filter.agent)))[0]!.n;
    const where = !('mac' in filter) ? eq(clients.devicePrefix64, filter.prefix64) : filter.mac === null ? isNull(clients.mac) : eq(clients.mac, filter.mac);
    return (await this.#db.select({ n: count() }).from(clients).innerJoin(instances, eq(instances.clientId, clients.id)).where(where))[0]!.n;
  }

  async instancesPerAgent(): Promise<Map<string, number>> {
    const rows = await this.#db.select({ agent: schema.instances.agent, n: count() }).from(schema.instances).groupBy(schema.instances.agent);
    return new Map(rows.map((r) => [r.agent, r.n]));
  }

  async allocateAddress(clientId: string): Promise<string | undefined> {
    const prefix = this.#prefix;
    if (!prefix) return undefined;
    const { addressPool } = schema;
    const held = (db: Db) => db.select({ offset: addressPool.offset }).from(addressPool).where(eq(addressPool.clientId, clientId));
    return this.#write(async (db) => {
      const [mine] = await held(db);
      if (mine) return prefix.addressAt(mine.offset);
      for (const offset of poolDraws(this.#drawOffset)) {
        // The primary key decides: of two orchestrators drawing one offset, one inserts it.
        const taken = await db.insert(addressPool).values({ offset, clientId }).onConflictDoNothing().returning({ offset: addressPool.offset });
        if (taken.length > 0) return prefix.addressAt(offset);
        // The offset is held, or this client got one meanwhile (client_id is unique too).
        const [meanwhile] = await held(db);
        if (meanwhile) return prefix.addressAt(meanwhile.offset);
      }
      return undefined;
    });
  }

  async claimAddress(clientId: string, address: string): Promise<boolean> {
    if (!this.#prefix) return true;
    const offset = this.#prefix.offsetOf(address);
    if (offset === undefined || offset < FIRST_POOL_OFFSET || offset > LAST_POOL_OFFSET) return false;
    const { addressPool } = schema;
    const holderOf = async (db: Db) => (await db.select({ clientId: addressPool.clientId }).from(addressPool).where(eq(addressPool.offset, offset)))[0]?.clientId;
    const outcome = await this.#writeAll(async (db) => {
      const holder = await holderOf(db);
      if (holder !== undefined) return holder === clientId;
      await db.delete(addressPool).where(eq(addressPool.clientId, clientId));
      const taken = await db.insert(addressPool).values({ offset, clientId }).onConflictDoNothing().returning({ offset: addressPool.offset });
      // Taken by another meanwhile: undo the release of this client's own.
      if (taken.length === 0) throw new ClaimLost();
      return true;
    }).catch((error: unknown) => {
      if (error instanceof ClaimLost) return undefined;
      throw error;
    });
    return outcome ?? (await holderOf(this.#db)) === clientId;
  }

  async releaseAddress(clientId: string): Promise<void> {
    await this.#write((db) => releaseAddress(db, clientId));
  }

  async putKept(kept: KeptRecord): Promise<void> {
    await this.#write((db) => putKept(db, kept));
  }

  async deleteKept(image: string): Promise<void> {
    await this.#write((db) => deleteKept(db, image));
  }

  async listKept(clientId?: string): Promise<KeptRecord[]> {
    const query = this.#db.select().from(schema.keptImages);
    return (clientId === undefined ? query : query.where(eq(schema.keptImages.clientId, clientId))).orderBy(asc(schema.keptImages.createdAt), asc(schema.keptImages.image));
  }

  async putShare(share: ShareRecord): Promise<void> {
    const { tokenHash: _hash, ...rest } = share;
    await this.#write(async (db) => {
      await db.insert(schema.shares).values(share).onConflictDoUpdate({ target: schema.shares.tokenHash, set: rest });
    });
  }

  async getShare(tokenHash: string): Promise<ShareRecord | undefined> {
    return (await this.#db.select().from(schema.shares).where(eq(schema.shares.tokenHash, tokenHash)))[0];
  }

  async useShare(tokenHash: string, at: string): Promise<boolean> {
    // One statement: of two downloads at once (on either orchestrator), one changes the row.
    return this.#write(async (db) => (await db.update(schema.shares).set({ usedAt: at }).where(and(eq(schema.shares.tokenHash, tokenHash), isNull(schema.shares.usedAt))).returning({ tokenHash: schema.shares.tokenHash })).length === 1);
  }

  async deleteShare(tokenHash: string): Promise<void> {
    await this.#write(async (db) => {
      await db.delete(schema.shares).where(eq(schema.shares.tokenHash, tokenHash));
    });
  }

  async listShares(): Promise<ShareRecord[]> {
    return this.#db.select().from(schema.shares).orderBy(asc(schema.shares.createdAt), asc(schema.shares.tokenHash));
  }

  async compactMemory(): Promise<void> {
    // Nothing held here: the rows live in the server.
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

class ClaimLost extends Error {}

async function putClient(db: Db, client: ClientRecord): Promise<void> {
  const { id, ...rest } = client;
  const row = { ...rest, devicePrefix64: prefix64Of(client.address), deviceAddress: canonicalIpv6(client.address) };
  await db.insert(schema.clients).values({ id, ...row }).onConflictDoUpdate({ target: schema.clients.id, set: row });
}

async function addTransition(db: Db, t: TransitionRecord): Promise<void> {
  await db.insert(schema.clientTransitions).values({ clientId: t.clientId, fromState: t.from, toState: t.to, reason: t.reason, at: t.at });
}

async function touchServer(db: Db, server: ServerRecord): Promise<void> {
  await db.insert(schema.dhcpServers).values(server).onConflictDoUpdate({ target: schema.dhcpServers.name, set: { role: server.role, lastSeen: server.lastSeen } });
}

async function putInstance(db: Db, instance: InstanceRecord): Promise<void> {
  const { clientId: _clientId, ...rest } = instance;
  await db.insert(schema.instances).values(instance).onConflictDoUpdate({ target: schema.instances.clientId, set: rest });
}

async function deleteInstance(db: Db, clientId: string): Promise<void> {
  await db.delete(schema.instances).where(eq(schema.instances.clientId, clientId));
}

async function releaseAddress(db: Db, clientId: string): Promise<void> {
  await db.delete(schema.addressPool).where(eq(schema.addressPool.clientId, clientId));
}

async function putKept(db: Db, kept: KeptRecord): Promise<void> {
  const { image: _image, ...rest } = kept;
  await db.insert(schema.keptImages).values(kept).onConflictDoUpdate({ target: schema.keptImages.image, set: rest });
}

async function deleteKept(db: Db, image: string): Promise<void> {
  await db.delete(schema.keptImages).where(eq(schema.keptImages.image, image));
}

/** Marks events applied: one UPDATE for the lot (a statement prepared once per connection). */
async function markApplied(client: pg.ClientBase, marks: readonly AppliedMark[]): Promise<void> {
  await client.query({
    name: 'journal_mark',
    text: JOURNAL_MARK,
    values: [marks.map((m) => m.eventId), marks.map((m) => m.appliedAt), marks.map((m) => m.outcome), marks.map((m) => m.outcomeKind)],
  });
}
