import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { postgresMissing, startPostgres, type PostgresServer } from '@unionize/protocol/testing/postgres-server';
import { ADVISORY_LOCK_CLASS, FENCE_LOCK } from '../store/postgres/advisory-locks.js';
import { applyMigrations } from '../store/postgres/migrate.js';
import { NotLeaderError } from '../store/fence.js';
import { Leadership } from './leadership.js';

const missing = postgresMissing();
if (missing && process.env.CI === 'true') throw new Error(`CI=true and the leadership tests cannot run: ${missing}`);
if (missing) console.warn(`skipping the leadership tests: ${missing}`);

let server: PostgresServer | undefined;
let connection: pg.ClientConfig;
const made: Leadership[] = [];

beforeAll(async () => {
  if (missing) return;
  server = await startPostgres({ dir: makeTempDir('uz-pg-') });
  await server.createDatabase('pair');
  connection = server.connection('pair');
  await applyMigrations(connection);
}, 180_000);

afterAll(async () => {
  await Promise.all(made.map((l) => l.stop()));
  await server?.stop();
}, 120_000);

function leadership(name: string, lost: string[] = []): Leadership {
  const made1 = new Leadership({ connection, name, url: `https://${name}:8443`, retryMs: 50, log: pino({ level: 'silent' }), onLost: (reason) => lost.push(reason) });
  made.push(made1);
  return made1;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(connection);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe.skipIf(missing)('Leadership (a real PostgreSQL server)', () => {
  it('one leads, the other stands by; the leader\'s lost connection is lost leadership, and the standby leads in a new epoch', async () => {
    const lostA: string[] = [];
    const a = leadership('orch-a', lostA);
    const b = leadership('orch-b');
    const epochA = await a.acquire();
    await a.check();
    let bLeads = false;
    const bAcquired = b.acquire().then((epoch) => {
      bLeads = true;
      return epoch;
    });
    // b tries every 50 ms; while a holds the lock, it waits, and sees who leads.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(bLeads).toBe(false);
    expect(b.leading).toBe(false);
    expect(b.leader()).toMatchObject({ name: 'orch-a', url: 'https://orch-a:8443', epoch: epochA });

    // The lock's session ends as when its process dies or its network fails: the server frees the lock.
    await admin((client) => client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '' AND pid <> pg_backend_pid() AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"));
    const epochB = await bAcquired;
    expect(epochB).toBe(epochA + 1);
    await b.check();
    expect(b.leader()).toMatchObject({ name: 'orch-b', epoch: epochB });
    // a noticed (its connection's error, or the next watch query), and said so once.
    await expect.poll(() => lostA.length, { timeout: 30_000 }).toBe(1);
    expect(a.leading).toBe(false);
    await expect(a.check()).rejects.toBeInstanceOf(NotLeaderError);
    await b.stop();
  });

  it('a new leader waits for the writes of the one before it still under way, and later ones read its epoch', async () => {
    // A write of the old leader under way: its transaction holds the fence's lock shared, as PostgresStore's fenced writes do.
    const writer = new pg.Client(connection);
    await writer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query('SELECT pg_advisory_xact_lock_shared($1, $2)', [ADVISORY_LOCK_CLASS, FENCE_LOCK]);
      const before = Number((await writer.query('SELECT epoch FROM leadership WHERE id = 1')).rows[0].epoch);
      const e = leadership('orch-e');
      let led = false;
      const leading = e.acquire().then((epoch) => {
        led = true;
        return epoch;
      });
      // Its epoch is written, but it does not lead while the write is under way.
      await expect.poll(async () => Number((await admin((client) => client.query('SELECT epoch FROM leadership WHERE id = 1'))).rows[0].epoch), { timeout: 30_000 }).toBe(before + 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(led).toBe(false);
      await writer.query('COMMIT');
      expect(await leading).toBe(before + 1);
      // A write that begins now takes the lock and reads the new epoch: the old leader's is refused.
      await writer.query('BEGIN');
      await writer.query('SELECT pg_advisory_xact_lock_shared($1, $2)', [ADVISORY_LOCK_CLASS, FENCE_LOCK]);
      expect(Number((await writer.query('SELECT epoch FROM leadership WHERE id = 1')).rows[0].epoch)).toBe(before + 1);
      await writer.query('COMMIT');
      await e.stop();
    } finally {
      await writer.end();
    }
  });

  it('gives the lead up at stop, to the next to try', async () => {
    const c = leadership('orch-c');
    const d = leadership('orch-d');
    const epochC = await c.acquire();
    const next = d.acquire();
    await c.stop();
    expect(await next).toBe(epochC + 1);
    await expect(c.check()).rejects.toBeInstanceOf(NotLeaderError);
    await d.stop();
  });
});
