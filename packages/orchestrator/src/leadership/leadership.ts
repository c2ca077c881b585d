import pg from 'pg';
import type { Logger } from 'pino';
import { ADVISORY_LOCK_CLASS, LEADERSHIP_LOCK } from '../store/postgres/advisory-locks.js';
import { NotLeaderError, type WriteFence } from '../store/fence.js';

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
 * Each new leader adds one to the leadership row's epoch. The store's writes
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
          const { rows: [row] } = await client.query<{ epoch: string }>(
            'UPDATE leadership SET epoch = epoch + 1, holder = $1, url = $2, since = $3 WHERE id = 1 RETURNING epoch',
            [this.#options.name, this.#options.url ?? null, new Date().toISOString()],
          );
          if (!row) throw new Error('the leadership row is missing (were the migrations applied?)');
          this.#epoch = Number(row.epoch);
          this.#watchConnection(client);
          log.info({ epoch: this.#epoch, name: this.#options.name }, 'leading');
          return this.#epoch;
        }
        const leader = await this.#read(client);
        say('standing by: another orchestrator leads', { leader: leader?.name, leaderUrl: leader?.url, epoch: leader?.epoch });
      } catch (error) {
        this.#drop();
        say('standing by: the database cannot be reached', { err: (error as Error).message });
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
    throw new Error('leadership: stopped');
  }

  /** Who leads now, as the database says (undefined when no one ever has, or it cannot be asked). */
  async leader(): Promise<LeaderRecord | undefined> {
    try {
      return await this.#read(await this.#connection());
    } catch {
      return undefined;
    }
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
    const { rows } = await client.query<{ epoch: string }>('SELECT epoch FROM leadership WHERE id = 1');
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

  async #connection(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new pg.Client({ ...this.#options.connection, keepAlive: true });
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
    this.#watch = setInterval(() => {
      client.query('SELECT 1').catch((error: unknown) => this.#failed(client, (error as Error).message));
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
