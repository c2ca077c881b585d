import pg from 'pg';
import type { Logger } from 'pino';
import { ADVISORY_LOCK_CLASS, FENCE_LOCK, LEADERSHIP_LOCK } from '../store/postgres/advisory-locks.js';
import { NotLeaderError, type WriteFence } from '../store/fence.js';

/** How long a new leader waits for the writes of the one before it (their transactions end by the pool's idle_in_transaction_session_timeout). */
const TAKEOVER_TIMEOUT_MS = 30_000;

/** Who leads, as the database says. */
export interface LeaderRecord {
  name: string;
  url: string | null;
  epoch: number;
  since: string;
}

export interface LeadershipOptions {
  /** The database (the store's); a connection of its own holds the lock. */
  connection: pg.ClientConfig;
  /** This orchestrator's name, and where it is reached: written for the others to show. */
  name: string;
  url?: string;
  /** How often the lock is tried while another leads, and the lock's connection checked while leading. */
  retryMs: number;
  log: Logger;
  /** Called once, when leadership that was held is lost (its connection failed). */
  onLost: (reason: string) => void;
}

/**
 * Leadership among the orchestrators on one PostgreSQL database, with no
 * consensus of our own: the leader is whoever holds one advisory lock
 * (advisory-locks.ts), on a connection kept for it. The server releases the
 * lock when that session ends (the process died, or the connection broke),
 * so losing the connection is losing leadership, and the next one to try
 * the lock leads.
 *
 * Each new leader adds one to the leadership row's epoch, then waits for the
 * writes under way (the fence's lock, advisory-locks.ts). The store's writes
 * check it (PostgresStore's fence), and so does every call to an agent
 * (agents/fenced-agent.ts): a leader that lost its lock but has not noticed
 * yet makes no write and no call after its successor began.
 */
export class Leadership implements WriteFence {
  readonly #options: LeadershipOptions;
  #client: pg.Client | undefined;
  #epoch: number | undefined;
  #watch: NodeJS.Timeout | undefined;
  #stopped = false;
  #lost = false;
  /** Who leads, as last read (each try of the lock reads it; this process, once it leads). */
  #known: LeaderRecord | undefined;

  constructor(options: LeadershipOptions) {
    this.#options = options;
  }

  /** The epoch this process leads in; undefined while it does not lead. */
  epoch(): number | undefined {
    return this.#epoch;
  }

  get leading(): boolean {
    return this.#epoch !== undefined;
  }

  /**
   * Resolves with the epoch once this process leads: tries the lock every
   * retryMs, through database outages (each change is logged once). Rejects
   * when stop() is called first.
   */
  async acquire(): Promise<number> {
    const { log, retryMs } = this.#options;
    let said = '';
    const say = (what: string, fields: object) => {
      if (what === said) return;
      said = what;
      log.info(fields, what);
    };
    while (!this.#stopped) {
      try {
        const client = await this.#connection();
        const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [ADVISORY_LOCK_CLASS, LEADERSHIP_LOCK]);
        if (rows[0]?.ok) {
          const since = new Date().toISOString();
          // Bounded: a write of the leader before that hangs (its host gone mid-transaction) ends by
          // idle_in_transaction_session_timeout; until then this gives up, frees the lock and tries again.
          const { rows: [row] } = await client.query<{ epoch: string }>({
            text: 'UPDATE leadership SET epoch = epoch + 1, holder = $1, url = $2, since = $3 WHERE id = 1 RETURNING epoch',
            values: [this.#options.name, this.#options.url ?? null, since],
            query_timeout: TAKEOVER_TIMEOUT_MS,
          } as pg.QueryConfig);
          if (!row) throw new Error('the leadership row is missing (were the migrations applied?)');
          // The fence, exclusively for a moment: the writes of the leader before (under way, their epoch read before ours was written) end first.
          await client.query({ text: 'SELECT pg_advisory_lock($1, $2)', values: [ADVISORY_LOCK_CLASS, FENCE_LOCK], query_timeout: TAKEOVER_TIMEOUT_MS } as pg.QueryConfig);
          await client.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_LOCK_CLASS, FENCE_LOCK]);
          this.#epoch = Number(row.epoch);
          this.#known = { name: this.#options.name, url: this.#options.url ?? null, epoch: this.#epoch, since };
          this.#watchConnection(client);
          log.info({ epoch: this.#epoch, name: this.#options.name }, 'leading');
          return this.#epoch;
        }
        const leader = await this.#read(client);
        this.#known = leader;
        say('standing by: another orchestrator leads', { leader: leader?.name, leaderUrl: leader?.url, epoch: leader?.epoch });
      } catch (error) {
        this.#drop();
        say('standing by: the database cannot be reached', { err: (error as Error).message });
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
    throw new Error('leadership: stopped');
  }

  /**
   * Who leads, as the database said at this process's last try of the lock
   * (every retryMs while it stands by), or this process once it leads;
   * undefined before anyone has. No query: the standby answers every
   * request, and must not cost the database one each.
   */
  leader(): LeaderRecord | undefined {
    return this.#known;
  }

  /**
   * Resolves when this process leads and the database's epoch is still its
   * own; a NotLeaderError otherwise. Asked before each call that acts on an
   * agent.
   */
  async check(): Promise<void> {
    const mine = this.#epoch;
    const client = this.#client;
    if (mine === undefined || !client) throw new NotLeaderError('this orchestrator holds no leadership');
    const { rows } = await client.query<{ epoch: string }>({ text: 'SELECT epoch FROM leadership WHERE id = 1', query_timeout: this.#queryTimeoutMs } as pg.QueryConfig);
    const current = rows[0] === undefined ? undefined : Number(rows[0].epoch);
    if (current !== mine) throw new NotLeaderError(`epoch ${mine} was superseded by ${current ?? 'none'}`);
  }

  /** Gives leadership up (at shutdown: the standby takes over at its next try). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#watch);
    this.#epoch = undefined;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  async #read(client: pg.Client): Promise<LeaderRecord | undefined> {
    const { rows: [row] } = await client.query<{ holder: string; url: string | null; epoch: string; since: string }>('SELECT holder, url, epoch, since FROM leadership WHERE id = 1');
    if (!row || row.holder === '') return undefined;
    return { name: row.holder, url: row.url, epoch: Number(row.epoch), since: row.since };
  }

  /** A query on the lock's connection that takes longer than this has failed it: a few tries' worth, at least 5 s. */
  get #queryTimeoutMs(): number {
    return Math.max(5000, 3 * this.#options.retryMs);
  }

  /** The lock's connection: made by acquire() alone (one at a time), kept while this process leads. */
  async #connection(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new pg.Client({ ...this.#options.connection, keepAlive: true, keepAliveInitialDelayMillis: 5000 });
    client.on('error', (error) => this.#failed(client, error.message));
    client.on('end', () => this.#failed(client, 'the connection closed'));
    await client.connect().catch(async (error: unknown) => {
      await client.end().catch(() => {});
      throw error;
    });
    // Across a network, the server notices a leader's host gone within about 10 s (TCP keepalives), and frees its lock.
    await client.query('SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3');
    this.#client = client;
    return client;
  }

  /** While leading: the lock's connection is asked every retryMs, so a dead one is noticed even when idle. */
  #watchConnection(client: pg.Client): void {
    let asking = false;
    this.#watch = setInterval(() => {
      // One at a time: a query that hangs fails the connection at its timeout, not a queue of them.
      if (asking) return;
      asking = true;
      client.query({ text: 'SELECT 1', query_timeout: this.#queryTimeoutMs } as pg.QueryConfig)
        .catch((error: unknown) => this.#failed(client, (error as Error).message))
        .finally(() => {
          asking = false;
        });
    }, this.#options.retryMs);
    this.#watch.unref();
  }

  #failed(client: pg.Client, reason: string): void {
    if (client !== this.#client) return;
    const wasLeading = this.#epoch !== undefined;
    this.#drop();
    if (wasLeading && !this.#stopped && !this.#lost) {
      this.#lost = true;
      this.#options.onLost(reason);
    }
  }

  #drop(): void {
    clearInterval(this.#watch);
    this.#epoch = undefined;
    const client = this.#client;
    this.#client = undefined;
    client?.end().catch(() => {});
  }
}
