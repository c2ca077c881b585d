import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * For tests: a throwaway PostgreSQL server (Debian's `postgresql` package),
 * a cluster made by initdb in a temporary folder, run as an unprivileged
 * user (`postgres`, else `nobody`, when the tests run as root), listening on
 * a Unix socket in that folder only (no TCP port), with a password
 * (scram-sha-256) read from a file, as an operator would set it up.
 * `dir`: an empty folder of the caller's (who removes it, after stop());
 * others may pass through it to the socket (mode 711), not list or read it.
 */
export interface PostgresServer {
  /** The socket's folder: node-postgres's `host`. */
  readonly socketDir: string;
  readonly user: string;
  readonly password: string;
  /** A file holding the password (mode 600), for [store] password_file. */
  readonly passwordFile: string;
  /** postgres://USER@/DATABASE?host=SOCKETDIR, without the password. */
  url(database: string): string;
  /** node-postgres connection settings for a database. */
  connection(database: string): { host: string; user: string; password: string; database: string };
  /** A new empty database. */
  createDatabase(name: string): Promise<void>;
  /** Stops the server (fast shutdown), and start() brings it back on the same cluster. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** The server's own PID while it runs. */
  readonly pid: number | undefined;
  /** `postgres --version`, e.g. PostgreSQL 15.18. */
  readonly version: string;
}

const USER = 'unionize';

/** Where initdb and postgres are: on PATH, or Debian's /usr/lib/postgresql/VERSION/bin (the newest). */
export function postgresBinDir(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    if (executable(join(dir, 'initdb')) && executable(join(dir, 'postgres'))) return dir;
  }
  let versions: string[] = [];
  try {
    versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  } catch {
    return undefined;
  }
  for (const version of versions) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (executable(join(dir, 'initdb')) && executable(join(dir, 'postgres'))) return dir;
  }
  return undefined;
}

/** null when a server can be started here, else one line saying why not (for skipIf). */
export function postgresMissing(): string | null {
  if (process.platform !== 'linux') return `a PostgreSQL server for the tests needs Linux (this is ${process.platform})`;
  if (!postgresBinDir()) return 'needs a PostgreSQL server: initdb and postgres (Debian package postgresql; run scripts/setup.sh as root)';
  if (process.getuid?.() === 0 && !serverUser()) return 'needs an unprivileged user to run PostgreSQL as (postgres or nobody)';
  return null;
}

export async function startPostgres(options: { dir: string }): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(postgresMissing() ?? 'no PostgreSQL');
  const dir = options.dir;
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o711);
  const owner = process.getuid?.() === 0 ? serverUser() : undefined;
  if (process.getuid?.() === 0 && !owner) throw new Error('no unprivileged user to run PostgreSQL as');
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const asOwner = (argv: string[]) => (owner ? ['setpriv', `--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--clear-groups', '--no-new-privs', ...argv] : argv);
  const password = `pw-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  // The password for initdb, readable by the server's user; the client's copy stays the caller's.
  const initPassword = join(dir, 'initdb.password');
  writeFileSync(initPassword, `${password}\n`, { mode: 0o600 });
  if (owner) chownSync(initPassword, owner.uid, owner.gid);
  // The client's copy: the caller's own (root's, mode 600, so not the server user's).
  const passwordFile = join(dir, 'client.password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const data = join(dir, 'data');
  const [initdb, ...initArgs] = asOwner([join(bin, 'initdb'), '-D', data, '-U', USER, '--pwfile', initPassword, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const init = spawnSync(initdb!, initArgs, {
    encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, cwd: dir, timeout: 120_000,
  });
  if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}): ${(init.stderr || init.stdout).trim().split('\n').slice(-5).join(' | ')}`);

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';
  const start = async () => {
    if (child) return;
    log = '';
    const [file, ...args] = asOwner([join(bin, 'postgres'), '-D', data, '-k', dir, '-c', 'listen_addresses=', '-c', 'max_connections=60', '-c', 'shared_buffers=32MB']);
    const started = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, env: { ...process.env, LC_ALL: 'C' } });
    child = started;
    // Should the test process end without stop(): an immediate shutdown, so no server outlives it.
    const onExit = () => started.kill('SIGQUIT');
    process.once('exit', onExit);
    started.once('exit', () => process.off('exit', onExit));
    started.stdout!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-4000)));
    started.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-4000)));
    exited = new Promise((resolve) => started.once('exit', () => {
      if (child === started) child = undefined;
      resolve();
    }));
    // Ready when the socket answers a query (bounded: a loaded machine may take a while).
    const { default: pg } = await import('pg');
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child !== started) throw new Error(`postgres exited while starting: ${log.trim().split('\n').slice(-5).join(' | ')}`);
      const client = new pg.Client({ host: dir, user: USER, password, database: 'postgres' });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
        await client.end();
        return;
      } catch {
        await client.end().catch(() => {});
        if (Date.now() > deadline) throw new Error(`postgres did not answer within 120 s: ${log.trim().split('\n').slice(-5).join(' | ')}`);
        await sleep(100);
      }
    }
  };
  const stop = async () => {
    const running = child;
    if (!running) return;
    // SIGINT: fast shutdown (clients are disconnected, the cluster is consistent).
    running.kill('SIGINT');
    const killed = setTimeout(() => running.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(killed);
  };
  await start();
  const version = /PostgreSQL\)?\s*([0-9.]+)/.exec(spawnSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1];
  const server: PostgresServer = {
    version: version ? `PostgreSQL ${version}` : 'PostgreSQL',
    socketDir: dir,
    user: USER,
    password,
    passwordFile,
    url: (database) => `postgres://${USER}@/${database}?host=${encodeURIComponent(dir)}`,
    connection: (database) => ({ host: dir, user: USER, password, database }),
    createDatabase: async (name) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
      const { default: pg } = await import('pg');
      const client = new pg.Client(server.connection('postgres'));
      client.on('error', () => {});
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
    },
    stop,
    start,
    get pid() {
      return child?.pid;
    },
  };
  return server;
}

function serverUser(): { uid: number; gid: number } | undefined {
  for (const name of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) {
      const ids = { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
      if (ids.uid > 0) return ids;
    }
  }
  return undefined;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
