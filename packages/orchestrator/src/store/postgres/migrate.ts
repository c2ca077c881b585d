import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { POSTGRES_MIGRATIONS_DIR } from '../migrations-dirs.js';
import { ADVISORY_LOCK_CLASS, MIGRATION_LOCK } from './advisory-locks.js';

/**
 * Applies the migrations the database lacks, and makes the leadership row.
 * drizzle applies them in one transaction, but reads which are applied (and
 * makes its own table) before it: two orchestrators starting at once would
 * both apply them. So the whole runs under an advisory lock, on one
 * connection: the second waits for the first, then finds nothing to do.
 */
export async function applyMigrations(connection: pg.ClientConfig): Promise<void> {
  const client = new pg.Client(connection);
  // An error while idle (the server went away) is also the next query's: that one reports it.
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query('SET client_min_messages = warning');
    await client.query('SELECT pg_advisory_lock($1, $2)', [ADVISORY_LOCK_CLASS, MIGRATION_LOCK]);
    await migrate(drizzle(client), { migrationsFolder: POSTGRES_MIGRATIONS_DIR });
    await client.query("INSERT INTO leadership (id, epoch, holder, since) VALUES (1, 0, '', $1) ON CONFLICT (id) DO NOTHING", [new Date().toISOString()]);
  } finally {
    // The lock goes with the session.
    await client.end();
  }
}
