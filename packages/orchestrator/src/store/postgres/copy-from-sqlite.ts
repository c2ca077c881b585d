import Database from 'better-sqlite3';
import { sql, type Table } from 'drizzle-orm';
import { drizzle as drizzleSqlite } from 'drizzle-orm/better-sqlite3';
import { drizzle as drizzlePostgres } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as sqliteSchema from '../schema.js';
import { ADVISORY_LOCK_CLASS, LEADERSHIP_LOCK } from './advisory-locks.js';
import { applyMigrations } from './migrate.js';
import * as pgSchema from './schema.js';

/**
 * Each table the SQLite store keeps, and its PostgreSQL twin: the same
 * columns by the same names (postgres/schema.ts), parents before the rows
 * that refer to them. `serial`: the column whose sequence goes on from the
 * copied rows.
 */
const TABLES = [
  { name: 'dhcp_servers', from: sqliteSchema.dhcpServers, to: pgSchema.dhcpServers },
  { name: 'clients', from: sqliteSchema.clients, to: pgSchema.clients },
  { name: 'client_transitions', from: sqliteSchema.clientTransitions, to: pgSchema.clientTransitions, serial: 'id' },
  { name: 'agents', from: sqliteSchema.agents, to: pgSchema.agents },
  { name: 'instances', from: sqliteSchema.instances, to: pgSchema.instances },
  { name: 'address_pool', from: sqliteSchema.addressPool, to: pgSchema.addressPool },
  { name: 'events', from: sqliteSchema.events, to: pgSchema.events, serial: 'seq' },
  { name: 'quarantine', from: sqliteSchema.quarantine, to: pgSchema.quarantine, serial: 'id' },
  { name: 'bans', from: sqliteSchema.bans, to: pgSchema.bans },
  { name: 'kept_images', from: sqliteSchema.keptImages, to: pgSchema.keptImages },
  { name: 'shares', from: sqliteSchema.shares, to: pgSchema.shares },
] as const;

/** Rows per INSERT: well under PostgreSQL's 65,535 parameters for the widest table (clients, 20 columns). */
const BATCH_ROWS = 500;

export interface CopyReport {
  dryRun: boolean;
  /** Rows per table: in the SQLite file, and in PostgreSQL after the copy (before it, on a dry run: 0 is what a copy needs). */
  tables: Array<{ table: string; source: number; target: number }>;
  /** Every table's count the same on both sides (a dry run: the target empty). */
  ok: boolean;
}

export class CopyError extends Error {
  override readonly name = 'CopyError';
}

/**
 * `orchestrator migrate` (and orchestratorctl migrate): a SQLite store's
 * whole state (clients and their transitions, instances, the address pool,
 * bans, kept images, share links, the journal) copied into a PostgreSQL
 * database for an orchestrator pair, in one transaction: all of it or none.
 *
 * The SQLite file is read in one read transaction (a consistent snapshot,
 * also of a store in use; stop its orchestrator first for the final copy,
 * so nothing it journals after the snapshot is left behind: the hook spools
 * meanwhile). The target gets the migrations first, must hold no client and
 * no event, and no orchestrator may lead on it meanwhile (the copy holds the
 * leadership lock). Afterwards every table's count is compared on both
 * sides. A dry run reads and counts, checks the target, and writes nothing.
 */
export async function copySqliteToPostgres(options: {
  sqlitePath: string;
  connection: pg.ClientConfig;
  dryRun: boolean;
  progress?: (line: string) => void;
}): Promise<CopyReport> {
  const say = options.progress ?? (() => {});
  let sqlite: Database.Database;
  try {
    sqlite = new Database(options.sqlitePath, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new CopyError(`cannot open the SQLite store ${options.sqlitePath}: ${(error as Error).message}`);
  }
  const client = new pg.Client(options.connection);
  client.on('error', () => {});
  try {
    const source = drizzleSqlite(sqlite);
    // One read transaction: every table as of one moment.
    const rows = sqlite.transaction(() => TABLES.map((t) => source.select().from(t.from as never).all() as Record<string, unknown>[]))();
    for (const [i, t] of TABLES.entries()) say(`read ${rows[i]!.length} row(s) of ${t.name} from ${options.sqlitePath}`);

    if (!options.dryRun) await applyMigrations(options.connection);
    await client.connect().catch((error: unknown) => {
      throw new CopyError(`cannot connect to PostgreSQL: ${(error as Error).message}`);
    });
    const target = drizzlePostgres(client);
    const migrated = (await client.query("SELECT to_regclass('public.clients') IS NOT NULL AS ok")).rows[0].ok as boolean;
    const count = async (table: Table) => Number((await target.select({ n: sql<number>`count(*)` }).from(table))[0]!.n);
    if (migrated) {
      const [clients, events] = [await count(pgSchema.clients), await count(pgSchema.events)];
      if (clients > 0 || events > 0) throw new CopyError(`the target already holds ${clients} client(s) and ${events} event(s): migrate into an empty database`);
    }
    if (options.dryRun) {
      const tables = TABLES.map((t, i) => ({ table: t.name, source: rows[i]!.length, target: 0 }));
      return { dryRun: true, tables, ok: true };
    }

    const { rows: [lock] } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [ADVISORY_LOCK_CLASS, LEADERSHIP_LOCK]);
    if (!lock?.ok) throw new CopyError('an orchestrator leads on the target database: stop the pair before migrating into it');
    await target.transaction(async (tx) => {
      for (const [i, t] of TABLES.entries()) {
        const all = rows[i]!;
        for (let start = 0; start < all.length; start += BATCH_ROWS) {
          await tx.insert(t.to as never).values(all.slice(start, start + BATCH_ROWS) as never);
        }
        if ('serial' in t && all.length > 0) {
          // The next id follows the copied ones.
          await tx.execute(sql`SELECT setval(pg_get_serial_sequence(${t.name}, ${t.serial}), (SELECT max(${sql.identifier(t.serial)}) FROM ${sql.identifier(t.name)}))`);
        }
        say(`copied ${all.length} row(s) of ${t.name}`);
      }
    });
    const tables = [];
    for (const [i, t] of TABLES.entries()) tables.push({ table: t.name, source: rows[i]!.length, target: await count(t.to) });
    return { dryRun: false, tables, ok: tables.every((t) => t.source === t.target) };
  } finally {
    sqlite.close();
    // The leadership lock, if taken, goes with the session.
    await client.end().catch(() => {});
  }
}
