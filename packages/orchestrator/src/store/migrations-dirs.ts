import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the migrations that drizzle-kit generated are shipped, beside dist/
 * in the package. Defined here, in a module as deep as the daemon's bundle
 * (dist/store/ and dist/bundle/), so the paths hold in both (scripts/bundle-daemons.sh).
 */
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The SQLite store's, from schema.ts. */
export const SQLITE_MIGRATIONS_DIR = join(packageRoot, 'drizzle');

/** The PostgreSQL store's, from postgres/schema.ts. */
export const POSTGRES_MIGRATIONS_DIR = join(packageRoot, 'drizzle-postgres');
