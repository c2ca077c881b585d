import { closeSync, fdatasync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { and, asc, count, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, ne, or, sql } from 'drizzle-orm';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import type { BanTarget } from '@unionize/protocol';
import { AsyncStore } from './async-store.js';
import type { SyncStore } from './sync-store.js';
import { CLIENT_STATES, DEFAULT_SQL_CACHE_MB, type QuarantinedRow, type AgentRecord, type BanRecord, type AppliedMark, type ClientListFilter, type ClientRecord, type ClientState, type EventRecord, type InstanceFilter, type InstanceRecord, type KeptRecord, type ServerRecord, type ShareRecord, type TransitionRecord } from './types.js';
import { FIRST_POOL_OFFSET, LAST_POOL_OFFSET, Prefix64, canonicalIpv6, drawFreeOffset, prefix64Of, randomPoolOffset, type DrawOffset } from './ipv6.js';
import * as schema from './schema.js';

import { SQLITE_MIGRATIONS_DIR } from './migrations-dirs.js';
import { eventRow, toClient, toEvent } from './rows.js';

/** Not isRetired(client), in SQL: the one definition is isRetired's (types.ts); the contract suite holds the two together. */
const NOT_RETIRED = or(ne(schema.clients.state, 'gone'), ne(schema.clients.desired, 'removed'), isNotNull(schema.clients.cooldownUntil));


export interface SqliteStoreOptions {
  path: string;
  prefix?: string;
  drawOffset?: DrawOffset;
  /** SQLite's page cache in MiB; default DEFAULT_SQL_CACHE_MB. */
  cacheMb?: number;
  onQuarantine?: (row: QuarantinedRow) => void;
}

/**
 * The durable store: SQLite (WAL) through drizzle-orm and better-sqlite3.
 * Pass a file path, or ':memory:' in tests. Migrations run on open.
 *
 * Durability. The connection runs with synchronous=NORMAL: a commit survives
 * the process being killed (kill -9), and a power cut may lose the last
 * commits. The journal is made durable on top of that: writeJournal's commit
 * (the events of one turn of the event loop, gathered by the dispatcher) is
 * followed by syncJournal, an fdatasync of the WAL file on libuv's thread pool,
 * and the dispatcher answers 202 only after an fdatasync that started after
 * the event's commit returned. That is what synchronous=FULL does at each
 * commit (sync the WAL before answering), without holding the event loop
 * for the disk, and once for all the events that came meanwhile (group
 * commit). appendEvent (one event, synchronous) commits with
 * synchronous=FULL. Everything else (clients, instances, marks of applied
 * events) is NORMAL; each journal sync makes what was committed before it
 * durable too. An event whose mark a power cut lost is applied again at
 * start, and the reconciler converges the rest.
 */
export class SyncSqliteStore implements SyncStore {
  readonly #sqlite: Database.Database;
  readonly #db: BetterSQLite3Database<typeof schema>;
  /** The static pool; none in dhcp addressing, where containers lease their own. */
  readonly #prefix: Prefix64 | undefined;
  readonly #drawOffset: DrawOffset;
  /** The journal's statements, prepared once: per event, building and preparing them cost more than running them. */
  readonly #journal: ReturnType<typeof journalStatements>;
  /** The WAL file, for syncJournal's fdatasync; none for ':memory:'. */
  readonly #walFd: number | undefined;
  /** Callers waiting for an fdatasync that starts after they asked; whether one is running. */
  #syncWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  #syncing = false;
  readonly #onQuarantine: (row: QuarantinedRow) => void;

  /** `onQuarantine`: told of each row moved to quarantine (the daemon logs it). */
  constructor(options: SqliteStoreOptions) {
    this.#sqlite = new Database(options.path);
    // Negative: KiB, not pages (https://sqlite.org/pragma.html#pragma_cache_size).
    this.#sqlite.pragma(`cache_size = ${-Math.round((options.cacheMb ?? DEFAULT_SQL_CACHE_MB) * 1024)}`);
    this.#sqlite.pragma('journal_mode = WAL');
    this.#sqlite.pragma('synchronous = NORMAL');
    this.#sqlite.pragma('foreign_keys = ON');
    this.#sqlite.pragma('busy_timeout = 5000');
    this.#db = drizzle(this.#sqlite, { schema });
    migrate(this.#db, { migrationsFolder: SQLITE_MIGRATIONS_DIR });
    this.#prefix = options.prefix === undefined ? undefined : new Prefix64(options.prefix);
    this.#drawOffset = options.drawOffset ?? randomPoolOffset;
    this.#onQuarantine = options.onQuarantine ?? (() => {});
    this.#fillDevicePrefixes();
    this.#journal = journalStatements(this.#sqlite, this.#db);
    // The WAL file exists from the first write (the migrations'), and stays
    // (the same file) while this connection is open.
    this.#walFd = this.#sqlite.memory ? undefined : openSync(`${this.#sqlite.name}-wal`, 'r');
  }

  transaction<T>(fn: () => T): T {
    return this.#sqlite.transaction(fn)();
  }

  appendEvent(record: EventRecord): { duplicate: boolean } {
    if (this.#sqlite.inTransaction) throw new Error('appendEvent inside a transaction: its own commit is the one that must reach the disk');
    // FULL for this commit: the WAL is synced before COMMIT returns. The level
    // is the connection's, and cannot change inside a transaction.
    this.#journal.durable.run();
    try {
      return this.#journal.write([record], [])[0]!;
    } finally {
      this.#journal.normal.run();
    }
  }

  writeJournal(events: readonly EventRecord[], applied: readonly AppliedMark[]): { duplicate: boolean }[] {
    if (events.length === 0 && applied.length === 0) return [];
    return this.#journal.write(events, applied);
  }

  syncJournal(): Promise<void> {
    if (this.#walFd === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#syncWaiters.push({ resolve, reject });
      if (!this.#syncing) this.#startSync(this.#walFd!);
    });
  }

  /** One fdatasync for everyone waiting now; those who ask meanwhile get the next one. */
  #startSync(fd: number): void {
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    this.#syncing = true;
    fdatasync(fd, (error) => {
      this.#syncing = false;
      for (const waiter of waiters) {
        if (error) waiter.reject(error);
        else waiter.resolve();
      }
      if (this.#syncWaiters.length > 0) this.#startSync(fd);
    });
  }

  markEventApplied(mark: AppliedMark): void {
    this.#journal.mark.run({ ...mark });
  }

  unappliedEvents(): EventRecord[] {
    return this.#readEvents(this.#db.select().from(schema.events).where(isNull(schema.events.appliedAt)).orderBy(asc(schema.events.seq)).all()).events;
  }

  recentEvents(limit: number): EventRecord[] {
    const { events, quarantined } = this.#readEvents(this.#db.select().from(schema.events).orderBy(desc(schema.events.seq)).limit(limit).all());
    // The rows quarantined left room for older ones.
    return quarantined > 0 ? this.recentEvents(limit) : events;
  }

  quarantinedRows(): number {
    return this.#db.select({ n: count() }).from(schema.quarantine).get()!.n;
  }

  /** The journal's rows as events; a row that is not one is moved to quarantine, and the rest are read. */
  #readEvents(rows: (typeof schema.events.$inferSelect)[]): { events: EventRecord[]; quarantined: number } {
    const events: EventRecord[] = [];
    let quarantined = 0;
    for (const row of rows) {
      try {
        events.push(toEvent(row));
      } catch (error) {
        this.#quarantine('events', row.eventId, row, error, () => this.#db.delete(schema.events).where(eq(schema.events.seq, row.seq)).run());
        quarantined++;
      }
    }
    return { events, quarantined };
  }

  /** Moves a row that cannot be read to the quarantine table (`remove` takes it out of its own), in one transaction. */
  #quarantine(table: string, id: string, row: object, error: unknown, remove: () => void): void {
    const reason = error instanceof Error ? error.message.slice(0, 1000) : String(error);
    this.transaction(() => {
      this.#db.insert(schema.quarantine).values({ sourceTable: table, rowId: id, row: JSON.stringify(row), reason, quarantinedAt: new Date().toISOString() }).run();
      remove();
    });
    this.#onQuarantine({ table, id, reason });
  }

  pruneEvents(keep: number): number {
    const cutoff = this.#db
      .select({ seq: schema.events.seq })
      .from(schema.events)
      .orderBy(desc(schema.events.seq))
      .limit(1)
      .offset(keep)
      .get();
    if (!cutoff) return 0;
    return this.#db
      .delete(schema.events)
      .where(and(isNotNull(schema.events.appliedAt), lt(schema.events.seq, cutoff.seq + 1)))
      .run().changes;
  }

  getClient(id: string): ClientRecord | undefined {
    // Prepared once: asked for every lease event.
    const row = this.#journal.getClient.get({ id });
    return row && toClient(row);
  }

  putClient(client: ClientRecord): void {
    const { id, ...rest } = client;
    const row = { ...rest, devicePrefix64: prefix64Of(client.address), deviceAddress: canonicalIpv6(client.address) };
    this.#db.insert(schema.clients).values({ id, ...row }).onConflictDoUpdate({ target: schema.clients.id, set: row }).run();
  }

  listClients(filter: ClientListFilter = {}): ClientRecord[] {
    const retired = filter.retired ?? true;
    const query = this.#db.select().from(schema.clients);
    const chosen = retired === true ? query : query.where(retired === false ? NOT_RETIRED : or(NOT_RETIRED, gte(schema.clients.updatedAt, retired.since)));
    return chosen.orderBy(asc(schema.clients.firstSeen), asc(schema.clients.id)).all().map(toClient);
  }

  deviceClients(server: string, duid: string): ClientRecord[] {
    // The clients_key index (server, duid, iaid) finds them.
    return this.#db.select().from(schema.clients).where(and(eq(schema.clients.server, server), eq(schema.clients.duid, duid), NOT_RETIRED)).all().map(toClient);
  }

  clientsWithAddress(address: string): ClientRecord[] {
    const key = canonicalIpv6(address);
    if (key === null) return [];
    return this.#db.select().from(schema.clients).where(and(eq(schema.clients.deviceAddress, key), NOT_RETIRED)).all().map(toClient);
  }

  listClientsPage(after: string | null, limit: number): ClientRecord[] {
    const query = this.#db.select().from(schema.clients);
    return (after === null ? query : query.where(gt(schema.clients.id, after))).orderBy(asc(schema.clients.id)).limit(limit).all().map(toClient);
  }

  clientsPerState(): Record<ClientState, number> {
    const counts = Object.fromEntries(CLIENT_STATES.map((s) => [s, 0])) as Record<ClientState, number>;
    const rows = this.#db.select({ state: schema.clients.state, n: count() }).from(schema.clients).groupBy(schema.clients.state).all();
    for (const { state, n } of rows) if (state in counts) counts[state as ClientState] = n;
    return counts;
  }

  addTransition(t: TransitionRecord): void {
    this.#db.insert(schema.clientTransitions).values({ clientId: t.clientId, fromState: t.from, toState: t.to, reason: t.reason, at: t.at }).run();
  }

  listTransitions(clientId: string, limit: number): TransitionRecord[] {
    return this.#db
      .select()
      .from(schema.clientTransitions)
      .where(eq(schema.clientTransitions.clientId, clientId))
      .orderBy(desc(schema.clientTransitions.id))
      .limit(limit)
      .all()
      .map((r) => ({ clientId: r.clientId, from: r.fromState as ClientState, to: r.toState as ClientState, reason: r.reason, at: r.at }));
  }

  pruneGoneClients(before: string, limit: number): number {
    const gone = this.#db
      .select({ id: schema.clients.id })
      .from(schema.clients)
      .where(and(eq(schema.clients.state, 'gone'), lt(schema.clients.updatedAt, before)))
      .limit(Math.min(limit, 10_000))
      .all()
      .map((row) => row.id);
    if (gone.length === 0) return 0;
    return this.transaction(() => {
      // Their transitions and instances go with them (foreign keys, on delete cascade); their addresses were released when they went.
      this.#db.delete(schema.addressPool).where(inArray(schema.addressPool.clientId, gone)).run();
      return this.#db.delete(schema.clients).where(inArray(schema.clients.id, gone)).run().changes;
    });
  }

  touchServer(server: ServerRecord): void {
    this.#db
      .insert(schema.dhcpServers)
      .values(server)
      .onConflictDoUpdate({ target: schema.dhcpServers.name, set: { role: server.role, lastSeen: server.lastSeen } })
      .run();
  }

  listServers(): ServerRecord[] {
    return this.#db.select().from(schema.dhcpServers).orderBy(asc(schema.dhcpServers.name)).all() as ServerRecord[];
  }

  putBan(ban: BanRecord): void {
    const { kind, value, ...rest } = ban;
    this.#db.insert(schema.bans).values(ban).onConflictDoUpdate({ target: [schema.bans.kind, schema.bans.value], set: rest }).run();
  }

  deleteBan(target: BanTarget): boolean {
    return this.#db.delete(schema.bans).where(and(eq(schema.bans.kind, target.kind), eq(schema.bans.value, target.value))).run().changes > 0;
  }

  listBans(): BanRecord[] {
    return this.#db.select().from(schema.bans).orderBy(asc(schema.bans.since), asc(schema.bans.value)).all();
  }

  putAgent(agent: AgentRecord): void {
    const { name, ...rest } = agent;
    this.#db.insert(schema.agents).values(agent).onConflictDoUpdate({ target: schema.agents.name, set: rest }).run();
  }

  listAgents(): AgentRecord[] {
    return this.#db.select().from(schema.agents).orderBy(asc(schema.agents.name)).all();
  }

  findInstanceByMac(mac: string): InstanceRecord | undefined {
    return this.#db.select().from(schema.instances).where(eq(schema.instances.mac, mac)).get();
  }

  getInstance(clientId: string): InstanceRecord | undefined {
    return this.#db.select().from(schema.instances).where(eq(schema.instances.clientId, clientId)).get();
  }

  putInstance(instance: InstanceRecord): void {
    const { clientId, ...rest } = instance;
    this.#db.insert(schema.instances).values(instance).onConflictDoUpdate({ target: schema.instances.clientId, set: rest }).run();
  }

  deleteInstance(clientId: string): void {
    this.#db.delete(schema.instances).where(eq(schema.instances.clientId, clientId)).run();
  }

  listInstances(): InstanceRecord[] {
    return this.#db.select().from(schema.instances).orderBy(asc(schema.instances.containerName)).all();
  }

  countInstances(filter?: InstanceFilter): number {
    const { instances, clients } = schema;
    if (!filter) return this.#db.select({ n: count() }).from(instances).get()!.n;
    if ('agent' in filter) return this.#db.select({ n: count() }).from(instances).where(eq(instances.agent, filter.agent)).get()!.n;
    const where = !('mac' in filter) ? eq(clients.devicePrefix64, filter.prefix64) : filter.mac === null ? isNull(clients.mac) : eq(clients.mac, filter.mac);
    // From the clients matching (by index), those with an instance (by primary key).
    return this.#db.select({ n: count() }).from(clients).innerJoin(instances, eq(instances.clientId, clients.id)).where(where).get()!.n;
  }

  instancesPerAgent(): Map<string, number> {
    const rows = this.#db.select({ agent: schema.instances.agent, n: count() }).from(schema.instances).groupBy(schema.instances.agent).all();
    return new Map(rows.map((r) => [r.agent, r.n]));
  }

  allocateAddress(clientId: string): string | undefined {
    const prefix = this.#prefix;
    if (!prefix) return undefined;
    return this.transaction(() => {
      const held = this.#db.select().from(schema.addressPool).where(eq(schema.addressPool.clientId, clientId)).get();
      if (held) return prefix.addressAt(held.offset);
      const offset = drawFreeOffset(this.#drawOffset, (o) => this.#db.select().from(schema.addressPool).where(eq(schema.addressPool.offset, o)).get() !== undefined);
      if (offset === undefined) return undefined;
      this.#db.insert(schema.addressPool).values({ offset, clientId }).run();
      return prefix.addressAt(offset);
    });
  }

  claimAddress(clientId: string, address: string): boolean {
    if (!this.#prefix) return true;
    const offset = this.#prefix.offsetOf(address);
    if (offset === undefined || offset < FIRST_POOL_OFFSET || offset > LAST_POOL_OFFSET) return false;
    return this.transaction(() => {
      const holder = this.#db.select().from(schema.addressPool).where(eq(schema.addressPool.offset, offset)).get();
      if (holder) return holder.clientId === clientId;
      this.releaseAddress(clientId);
      this.#db.insert(schema.addressPool).values({ offset, clientId }).run();
      return true;
    });
  }

  releaseAddress(clientId: string): void {
    this.#db.delete(schema.addressPool).where(eq(schema.addressPool.clientId, clientId)).run();
  }

  putKept(kept: KeptRecord): void {
    const { image, ...rest } = kept;
    this.#db.insert(schema.keptImages).values(kept).onConflictDoUpdate({ target: schema.keptImages.image, set: rest }).run();
  }

  deleteKept(image: string): void {
    this.#db.delete(schema.keptImages).where(eq(schema.keptImages.image, image)).run();
  }

  listKept(clientId?: string): KeptRecord[] {
    const query = this.#db.select().from(schema.keptImages);
    return (clientId === undefined ? query : query.where(eq(schema.keptImages.clientId, clientId)))
      .orderBy(asc(schema.keptImages.createdAt), asc(schema.keptImages.image))
      .all();
  }

  putShare(share: ShareRecord): void {
    const { tokenHash, ...rest } = share;
    this.#db.insert(schema.shares).values(share).onConflictDoUpdate({ target: schema.shares.tokenHash, set: rest }).run();
  }

  getShare(tokenHash: string): ShareRecord | undefined {
    return this.#db.select().from(schema.shares).where(eq(schema.shares.tokenHash, tokenHash)).get();
  }

  useShare(tokenHash: string, at: string): boolean {
    // One statement: of two downloads at once, one changes the row.
    return this.#db.update(schema.shares).set({ usedAt: at }).where(and(eq(schema.shares.tokenHash, tokenHash), isNull(schema.shares.usedAt))).run().changes === 1;
  }

  deleteShare(tokenHash: string): void {
    this.#db.delete(schema.shares).where(eq(schema.shares.tokenHash, tokenHash)).run();
  }

  listShares(): ShareRecord[] {
    return this.#db.select().from(schema.shares).orderBy(asc(schema.shares.createdAt), asc(schema.shares.tokenHash)).all();
  }

  compactMemory(): void {
    // Pages come back through the kernel's page cache when next read.
    this.#sqlite.pragma('shrink_memory');
  }

  close(): void {
    this.#sqlite.close();
    if (this.#walFd !== undefined) closeSync(this.#walFd);
  }

  /** Rows written before device_prefix64 (migration 0002) or device_address (0003) existed get them, once. */
  #fillDevicePrefixes(): void {
    const { clients } = schema;
    const rows = this.#db.select({ id: clients.id, address: clients.address }).from(clients).where(or(isNull(clients.devicePrefix64), isNull(clients.deviceAddress))).all();
    const set = this.#sqlite.prepare('UPDATE clients SET device_prefix64 = ?, device_address = ? WHERE id = ?');
    this.transaction(() => {
      for (const { id, address } of rows) {
        const prefix = prefix64Of(address);
        const canonical = canonicalIpv6(address);
        if (prefix !== null || canonical !== null) set.run(prefix, canonical, id);
      }
    });
  }
}

/**
 * The statements of the event path, prepared once, and the journal's
 * transaction. `durable` and `normal` switch the connection's synchronous
 * level around appendEvent's commit.
 */
function journalStatements(sqlite: Database.Database, db: BetterSQLite3Database<typeof schema>) {
  const placeholder = (name: keyof ReturnType<typeof eventRow>) => sql.placeholder(name);
  const insert = db
    .insert(schema.events)
    .values({
      eventId: placeholder('eventId'),
      clientId: placeholder('clientId'),
      receivedAt: placeholder('receivedAt'),
      payload: placeholder('payload'),
      appliedAt: placeholder('appliedAt'),
      outcome: placeholder('outcome'),
      outcomeKind: placeholder('outcomeKind'),
    })
    .onConflictDoNothing({ target: schema.events.eventId })
    .prepare();
  const mark = db
    .update(schema.events)
    .set({ appliedAt: sql`${sql.placeholder('appliedAt')}`, outcome: sql`${sql.placeholder('outcome')}`, outcomeKind: sql`${sql.placeholder('outcomeKind')}` })
    .where(eq(schema.events.eventId, sql.placeholder('eventId')))
    .prepare();
  return {
    insert,
    mark,
    getClient: db.select().from(schema.clients).where(eq(schema.clients.id, sql.placeholder('id'))).prepare(),
    write: sqlite.transaction((events: readonly EventRecord[], applied: readonly AppliedMark[]) => {
      const results = events.map((record) => ({ duplicate: insert.run(eventRow(record)).changes === 0 }));
      for (const { eventId, appliedAt, outcome, outcomeKind } of applied) mark.run({ eventId, appliedAt, outcome, outcomeKind });
      return results;
    }),
    durable: sqlite.prepare('PRAGMA synchronous = FULL'),
    normal: sqlite.prepare('PRAGMA synchronous = NORMAL'),
  };
}

/** The SQLite store as a Store (see SyncSqliteStore). */
export class SqliteStore extends AsyncStore {
  constructor(options: SqliteStoreOptions) {
    super(new SyncSqliteStore(options));
  }
}
