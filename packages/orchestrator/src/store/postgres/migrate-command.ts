import { parseArgs } from 'node:util';
import { ConfigError } from '@unionize/protocol';
import { postgresConnection, postgresUrlFault } from './connection.js';
import { CopyError, copySqliteToPostgres, type CopyReport } from './copy-from-sqlite.js';

const USAGE = 'usage: orchestrator migrate --from sqlite:PATH --to postgres://USER@HOST/DATABASE [--password-file FILE] [--dry-run] [--json]';

/**
 * `orchestrator migrate` (orchestratorctl migrate runs it): a SQLite store
 * copied into PostgreSQL (copy-from-sqlite.ts). Progress on stderr; the
 * counts per table on stdout, as a table or --json. Exit 0 when every count
 * matches (a dry run: when the copy could be made), 1 when not, 2 for bad use.
 */
export async function migrateCommand(argv: readonly string[], io: { out: (text: string) => void; err: (text: string) => void }): Promise<number> {
  let values: { from?: string; to?: string; 'password-file'?: string; 'dry-run'?: boolean; json?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { from: { type: 'string' }, to: { type: 'string' }, 'password-file': { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
      strict: true,
    }));
  } catch (error) {
    io.err(`orchestrator migrate: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const from = values.from;
  const to = values.to;
  if (!from?.startsWith('sqlite:') || from.length === 'sqlite:'.length || !to) {
    io.err(`orchestrator migrate: give --from sqlite:PATH and --to postgres://…\n${USAGE}`);
    return 2;
  }
  let report: CopyReport;
  try {
    // The URL is checked as [store] url is: postgres://, no password in it (that goes in --password-file).
    const fault = postgresUrlFault(to);
    if (fault === 'not-postgres') throw new ConfigError('--to must be a postgres:// URL');
    if (fault === 'password') throw new ConfigError('--to must not hold a password: give --password-file');
    const connection = postgresConnection({ url: to, password_file: values['password-file'], pool_size: 2, connect_timeout_ms: 10_000 });
    report = await copySqliteToPostgres({ sqlitePath: from.slice('sqlite:'.length), connection, dryRun: values['dry-run'] ?? false, progress: (line) => io.err(line) });
  } catch (error) {
    if (error instanceof ConfigError || error instanceof CopyError) {
      io.err(`orchestrator migrate: ${error.message}`);
      return 1;
    }
    throw error;
  }
  if (values.json) io.out(JSON.stringify(report));
  else {
    const width = Math.max(...report.tables.map((t) => t.table.length), 5);
    io.out([`${'TABLE'.padEnd(width)}  SQLITE  POSTGRESQL`, ...report.tables.map((t) => `${t.table.padEnd(width)}  ${String(t.source).padStart(6)}  ${String(t.target).padStart(10)}`)].join('\n'));
    io.out(report.dryRun
      ? 'dry run: nothing written; the target is empty and reachable, and the copy above can be made'
      : report.ok ? 'copied: every table\'s count matches' : 'COUNTS DIFFER: see above');
  }
  return report.ok ? 0 : 1;
}
