import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { postgresMissing, startPostgres, type PostgresServer } from '@unionize/protocol/testing/postgres-server';
import { leaseEventFixture } from '@unionize/protocol/testing/lease-event';
import { describeStore } from '../store.contract.js';
import type { EventRecord } from '../types.js';
import { NotLeaderError } from '../fence.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres-store.js';

// A real server, started here (postgres-server.ts); skipped with one line where there is none, never under CI=true.
const missing = postgresMissing();
if (missing && process.env.CI === 'true') throw new Error(`CI=true and the PostgreSQL store tests cannot run: ${missing}`);
if (missing) console.warn(`skipping the PostgreSQL store tests: ${missing}`);

let server: PostgresServer | undefined;
let databases = 0;
const stores: PostgresStore[] = [];

beforeAll(async () => {
  if (!missing) server = await startPostgres({ dir: makeTempDir('uz-pg-') });
}, 180_000);

afterAll(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close().catch(() => {})));
  await server?.stop();
}, 120_000);

/** A new database on the server, and its settings. */
async function newDatabase(): Promise<pg.PoolConfig> {
  const name = `t${++databases}_${process.pid}`;
  await server!.createDatabase(name);
  return server!.connection(name);
}

async function openStore(connection: pg.PoolConfig, options: Omit<PostgresStoreOptions, 'connection'> = {}): Promise<PostgresStore> {
  const store = await PostgresStore.open({ connection, prefix: 'fd00:3::/64', ...options });
  stores.push(store);
  return store;
}

describe.skipIf(missing)('PostgresStore', () => {
  describeStore('PostgresStore', async (options) => openStore(await newDatabase(), options ?? {}));

  const record = (clientId = 'c1'): EventRecord => {
    const event = leaseEventFixture({ hostname: null, mac: null, interface: null });
    return { eventId: event.eventId, clientId, receivedAt: '2026-01-01T00:00:00.000Z', event, appliedAt: null, outcome: null, outcomeKind: null };
  };

  it('migrates once when two orchestrators start on one database at the same moment', async () => {
    const connection = await newDatabase();
    const [a, b, c] = await Promise.all([openStore(connection), openStore(connection), openStore(connection)]);
    const admin = new pg.Client(connection);
    await admin.connect();
    try {
      const applied = await admin.query('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
      expect(applied.rows[0].n).toBeGreaterThan(0);
      const { rows } = await admin.query('SELECT count(*)::int AS n FROM leadership');
      expect(rows[0].n).toBe(1);
    } finally {
      await admin.end();
    }
    await a.appendEvent(record());
    expect(await b.unappliedEvents()).toHaveLength(1);
    expect(await c.quarantinedRows()).toBe(0);
  });

  it('keeps a journal and a pool right with two writers: each event once, each address to one client', async () => {
    const connection = await newDatabase();
    const [a, b] = await Promise.all([openStore(connection), openStore(connection)]);
    // The same 200 events offered by both at once, in batches, as two dispatchers would.
    const events = Array.from({ length: 200 }, (_, i) => record(`c${i}`));
    const batches = (list: EventRecord[]) => Array.from({ length: 20 }, (_, i) => list.slice(i * 10, i * 10 + 10));
    const results = await Promise.all([...batches(events).map((batch) => a.writeJournal(batch, [])), ...batches([...events].reverse()).map((batch) => b.writeJournal(batch, []))]);
    const written = results.flat().filter((r) => !r.duplicate).length;
    expect(written).toBe(200);
    expect(await a.unappliedEvents()).toHaveLength(200);
    // 50 clients allocated from both at once, each twice: one address each, no address twice.
    const clients = Array.from({ length: 50 }, (_, i) => `client-${i}`);
    const addresses = await Promise.all(clients.flatMap((id) => [a.allocateAddress(id), b.allocateAddress(id)]));
    for (let i = 0; i < clients.length; i++) expect(addresses[2 * i]).toBe(addresses[2 * i + 1]);
    expect(new Set(addresses).size).toBe(50);
  });

  it('draws on past an address the other orchestrator took meanwhile', async () => {
    const connection = await newDatabase();
    const a = await openStore(connection, { drawOffset: () => 0x100 });
    const offsets = [0x100, 0x101];
    const b = await openStore(connection, { drawOffset: () => offsets.shift()! });
    expect(await a.allocateAddress('x')).toBe('fd00:3::100');
    expect(await b.allocateAddress('y')).toBe('fd00:3::101');
    expect(await b.claimAddress('y', 'fd00:3::100')).toBe(false);
    expect(await b.claimAddress('y', 'fd00:3::102')).toBe(true);
    expect(await a.allocateAddress('y')).toBe('fd00:3::102');
  });

  it('with a fence: writes only while its epoch is the database\'s, and a successor\'s epoch stops every later write', async () => {
    const connection = await newDatabase();
    let mine: number | undefined;
    const store = await openStore(connection, { fence: { epoch: () => mine } });
    await expect(store.appendEvent(record())).rejects.toBeInstanceOf(NotLeaderError);
    const admin = new pg.Client(connection);
    await admin.connect();
    try {
      const bump = async () => (await admin.query('UPDATE leadership SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch')).rows[0].epoch as string;
      mine = Number(await bump());
      expect(await store.appendEvent(record())).toEqual({ duplicate: false });
      await store.transaction((tx) => tx.touchServer({ name: 'devnet', role: 'device', firstSeen: 'a', lastSeen: 'b' }));
      expect(await store.listServers()).toHaveLength(1);
      await bump();
      await expect(store.appendEvent(record())).rejects.toThrow(/superseded/);
      await expect(store.putAgent({ name: 'a', url: 'https://a', healthy: true, checkedAt: 't', unhealthySince: null, draining: false })).rejects.toBeInstanceOf(NotLeaderError);
      // Reads go on: a deposed leader may still answer what it knew.
      expect(await store.unappliedEvents()).toHaveLength(1);
      expect(await store.listAgents()).toEqual([]);
    } finally {
      await admin.end();
    }
  });

  it('reads an event journaled by the other orchestrator, and quarantines a row that is not an event', async () => {
    const connection = await newDatabase();
    const a = await openStore(connection);
    const b = await openStore(connection);
    const good = record();
    await a.appendEvent(good);
    const admin = new pg.Client(connection);
    await admin.connect();
    try {
      await admin.query("INSERT INTO events (event_id, client_id, received_at, payload) VALUES ($1, 'c9', 't', '{\"not\":\"an event\"}')", [randomUUID()]);
    } finally {
      await admin.end();
    }
    expect((await b.unappliedEvents()).map((e) => e.eventId)).toEqual([good.eventId]);
    expect(await a.quarantinedRows()).toBe(1);
  });
});
