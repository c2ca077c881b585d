import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { describeStore } from './store.contract.js';
import { SqliteStore, SyncSqliteStore } from './sqlite-store.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

describeStore('SqliteStore', (options) => new SqliteStore({ path: ':memory:', prefix: 'fd00:3::/64', ...options }));

function leaseRecord() {
  const eventId = randomUUID();
  return {
    eventId, clientId: 'c1', receivedAt: 't', appliedAt: null, outcome: null, outcomeKind: null,
    event: { eventId, server: 'devnet', role: 'device' as const, action: 'add' as const, duid: '00:01:02', iaid: '1', address: 'fd00:1::1', hostname: null, mac: null, interface: null, expiresAt: null, seenAt: '2026-01-01T00:00:00.000Z' },
  };
}

describe('SqliteStore on a file', () => {
  it('keeps everything across a reopen, with WAL', async () => {
    const path = join(makeTempDir('store-'), 'state.db');
    const first = new SqliteStore({ path, prefix: 'fd00:3::/64', drawOffset: () => 0x100 });
    const eventId = randomUUID();
    await first.appendEvent({
      eventId,
      clientId: 'c1',
      receivedAt: 't',
      appliedAt: null,
      outcome: null,
      outcomeKind: null,
      event: { eventId, server: 'devnet', role: 'device', action: 'add', duid: '00:01:02', iaid: '1', address: 'fd00:1::1', hostname: null, mac: null, interface: null, expiresAt: null, seenAt: '2026-01-01T00:00:00.000Z' },
    });
    expect(await first.allocateAddress('c1')).toBe('fd00:3::100');
    await first.close();
    const offsets = [0x100, 0x101];
    const second = new SqliteStore({ path, prefix: 'fd00:3::/64', drawOffset: () => offsets.shift()! });
    expect((await second.unappliedEvents()).map((e) => e.eventId)).toEqual([eventId]);
    expect(await second.allocateAddress('c1')).toBe('fd00:3::100');
    // The pool came back from the file: ::100 is c1's, so c2's first draw collides.
    expect(await second.allocateAddress('c2')).toBe('fd00:3::101');
    await second.close();
  });

  it('keeps what writeJournal committed and syncJournal synced, however many syncs are asked for at once', async () => {
    const path = join(makeTempDir('store-'), 'state.db');
    const first = new SqliteStore({ path });
    const ids: string[] = [];
    const syncs: Promise<void>[] = [];
    for (let batch = 0; batch < 5; batch++) {
      const events = Array.from({ length: 3 }, () => leaseRecord());
      ids.push(...events.map((e) => e.eventId));
      expect((await first.writeJournal(events, [])).every((r) => !r.duplicate)).toBe(true);
      syncs.push(first.syncJournal(), first.syncJournal());
    }
    await Promise.all(syncs);
    await first.close();
    const second = new SqliteStore({ path });
    expect((await second.unappliedEvents()).map((e) => e.eventId)).toEqual(ids);
    await second.close();
  });

  it('refuses to journal inside a transaction (its own commit is the durable one), and indexes the journal by event id and unapplied only', async () => {
    const path = join(makeTempDir('store-'), 'state.db');
    const store = new SyncSqliteStore({ path });
    expect(() => store.transaction(() => store.appendEvent(leaseRecord()))).toThrow(/inside a transaction/);
    expect(store.recentEvents(1)).toEqual([]);
    store.close();
    // Each index is a page more to write per event: none by client (migration 0004; nothing asks).
    const raw = new Database(path, { readonly: true });
    const indexes = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name").all() as Array<{ name: string }>;
    raw.close();
    expect(indexes.map((i) => i.name)).toEqual(['events_event_id_unique', 'events_unapplied']);
  });

  it('fills device_prefix64 and device_address of rows written before they existed (migrations 0002, 0003), so quotas and whoami find them', async () => {
    const path = join(makeTempDir('store-'), 'state.db');
    const first = new SqliteStore({ path });
    const at = '2026-01-01T00:00:00.000Z';
    await first.putClient({
      id: 'c1', server: 'devnet', role: 'device', duid: '00:01', iaid: '1', address: 'fd00:1::10', hostname: null, mac: null, state: 'ready', desired: 'running',
      stateReason: 'r', expiresAt: null, profile: null, ttlExpiresAt: null, cooldownUntil: null, firstSeen: at, lastSeen: at, updatedAt: at,
    });
    await first.putInstance({ clientId: 'c1', agent: 'dock1', containerName: 'dev-1', containerId: 'x', address: 'fd00:3::100/64', mac: '02:00:00:00:00:01', image: 'i', createdAt: at });
    await first.close();
    const raw = new Database(path);
    raw.prepare('UPDATE clients SET device_prefix64 = NULL, device_address = NULL').run();
    raw.close();
    const second = new SqliteStore({ path });
    expect(await second.countInstances({ prefix64: 'fd00:1:0:0' })).toBe(1);
    expect((await second.clientsWithAddress('fd00:1:0:0::10')).map((c) => c.id)).toEqual(['c1']);
    expect(await second.getClient('c1')).not.toHaveProperty('devicePrefix64');
    expect(await second.getClient('c1')).not.toHaveProperty('deviceAddress');
    await second.close();
  });

  it('gives events applied before outcome_kind existed their kind from their words (migration 0005), once', async () => {
    const path = join(makeTempDir('store-'), 'state.db');
    const first = new SqliteStore({ path });
    const old: Array<[string, string | null]> = [
      ['provisioned', 'provisioned'],
      ['deprovisioned', 'deprovisioned'],
      ['refreshed (old)', 'refreshed'],
      ['refused (quota: too many containers on dock1)', 'refused'],
      ['ignored: already gone', 'ignored'],
      ['cooling down until 2026-01-01T00:10:00.000Z after its TTL ran out', 'cooling'],
      ['bound fd00:3::d1 to dev-1', 'bound'],
      ['instance lease of dev-1 released', 'released'],
      ['failed: agent dock1 unreachable', 'failed'],
      ['something else', null],
    ];
    const records = old.map(() => leaseRecord());
    await first.writeJournal(records, []);
    await first.close();
    // Back to the schema before 0005: no column, neither it nor a later migration (0006: the quarantine table; 0007: bans; 0008: kept_images; 0009: shares) applied.
    const raw = new Database(path);
    const applied = raw.prepare('SELECT created_at AS at FROM __drizzle_migrations ORDER BY created_at').all() as { at: number }[];
    raw.prepare('DELETE FROM __drizzle_migrations WHERE created_at >= ?').run(applied[5]!.at);
    raw.exec('ALTER TABLE events DROP COLUMN outcome_kind');
    raw.exec('DROP TABLE quarantine');
    raw.exec('DROP TABLE bans');
    raw.exec('DROP TABLE kept_images');
    raw.exec('DROP TABLE shares');
    const mark = raw.prepare("UPDATE events SET applied_at = 't', outcome = ? WHERE event_id = ?");
    old.forEach(([text], i) => mark.run(text, records[i]!.eventId));
    raw.close();
    const second = new SqliteStore({ path });
    const kinds = new Map((await second.recentEvents(100)).map((e) => [e.eventId, [e.outcome, e.outcomeKind]]));
    expect(records.map((r) => kinds.get(r.eventId))).toEqual(old);
    await second.close();
  });

  it('frees an address allocated in a transaction that rolled back', async () => {
    const store = new SyncSqliteStore({ path: ':memory:', prefix: 'fd00:3::/64', drawOffset: () => 0x100 });
    expect(() =>
      store.transaction(() => {
        expect(store.allocateAddress('b')).toBe('fd00:3::100');
        throw new Error('abort');
      }),
    ).toThrow('abort');
    expect(store.allocateAddress('c')).toBe('fd00:3::100');
    store.close();
  });
});

describe('SqliteStore: a journal row that cannot be read', () => {
  it('is moved to quarantine and told, not fatal: the store opens and serves the rest', async () => {
    const path = join(makeTempDir('store-'), 'state.db');
    const first = new SqliteStore({ path, prefix: 'fd00:3::/64' });
    const good = leaseRecord();
    await first.appendEvent(good);
    await first.close();
    // Two bad rows written behind the store's back: a payload that is not JSON, and JSON that is not a lease event.
    const raw = new Database(path);
    const insert = raw.prepare("INSERT INTO events (event_id, client_id, received_at, payload) VALUES (?, 'c1', 't', ?)");
    insert.run('bad-json', '{"eventId": "cut sho');
    insert.run('bad-event', '{"action":"explode"}');
    raw.close();

    const told: { table: string; id: string; reason: string }[] = [];
    const second = new SqliteStore({ path, prefix: 'fd00:3::/64', onQuarantine: (row) => told.push(row) });
    expect((await second.unappliedEvents()).map((e) => e.eventId)).toEqual([good.eventId]);
    expect(told.map((t) => [t.table, t.id])).toEqual([['events', 'bad-json'], ['events', 'bad-event']]);
    expect(told.every((t) => t.reason.length > 0)).toBe(true);
    expect(await second.quarantinedRows()).toBe(2);
    // Out of the journal: read again, they are neither served nor told twice.
    expect((await second.recentEvents(10)).map((e) => e.eventId)).toEqual([good.eventId]);
    expect(told).toHaveLength(2);
    await second.close();

    const kept = new Database(path, { readonly: true });
    const rows = kept.prepare('SELECT source_table, row_id, row FROM quarantine ORDER BY id').all() as { source_table: string; row_id: string; row: string }[];
    kept.close();
    expect(rows.map((r) => [r.source_table, r.row_id])).toEqual([['events', 'bad-json'], ['events', 'bad-event']]);
    expect(JSON.parse(rows[0]!.row)).toMatchObject({ eventId: 'bad-json', payload: '{"eventId": "cut sho' });
  });

  it('among the recent events leaves room for older ones', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    const older = leaseRecord();
    await store.appendEvent(older);
    const newer = leaseRecord();
    await store.appendEvent({ ...newer, event: { ...newer.event, action: 'explode' as 'add' } });
    expect((await store.recentEvents(1)).map((e) => e.eventId)).toEqual([older.eventId]);
    expect(await store.quarantinedRows()).toBe(1);
    await store.close();
  });
});
