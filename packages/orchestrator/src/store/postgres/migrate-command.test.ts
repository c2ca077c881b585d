import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { leaseEventFixture } from '@unionize/protocol/testing/lease-event';
import { postgresMissing, startPostgres, type PostgresServer } from '@unionize/protocol/testing/postgres-server';
import { SqliteStore } from '../sqlite-store.js';
import { migrateCommand } from './migrate-command.js';
import { PostgresStore } from './postgres-store.js';

const missing = postgresMissing();
if (missing && process.env.CI === 'true') throw new Error(`CI=true and the migrate tests cannot run: ${missing}`);
if (missing) console.warn(`skipping the migrate tests: ${missing}`);

let server: PostgresServer | undefined;
beforeAll(async () => {
  if (!missing) server = await startPostgres({ dir: makeTempDir('uz-pg-') });
}, 180_000);
afterAll(async () => {
  await server?.stop();
}, 120_000);

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await migrateCommand(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe.skipIf(missing)('orchestrator migrate (SQLite to a real PostgreSQL)', () => {
  it('copies every table, with a dry run first and a count check, and refuses a target that is not empty', async () => {
    // A site's SQLite store: two clients, their transitions, an instance, an address, a ban, a kept image, a share, journaled events.
    const path = join(makeTempDir('migrate-'), 'state.db');
    const offsets = [0x100, 0x101];
    const sqlite = new SqliteStore({ path, prefix: 'fd00:3::/64', drawOffset: () => offsets.shift()! });
    const now = '2026-12-05T00:00:00.000Z';
    const client = (id: string) => ({
      id, server: 'devnet', role: 'device' as const, duid: `00:03:00:01:aa:bb:cc:dd:ee:${id.slice(-2)}`, iaid: '1', address: `fd00:1::${id.slice(-2)}`, hostname: `host-${id}`, mac: null,
      state: 'ready' as const, desired: 'running' as const, stateReason: 'container up', expiresAt: null, profile: null, ttlExpiresAt: null, cooldownUntil: null, firstSeen: now, lastSeen: now, updatedAt: now,
    });
    await sqlite.putClient(client('c01'));
    await sqlite.putClient(client('c02'));
    await sqlite.addTransition({ clientId: 'c01', from: 'pending', to: 'ready', reason: 'container up', at: now });
    expect(await sqlite.allocateAddress('c01')).toBe('fd00:3::100');
    await sqlite.putInstance({ clientId: 'c01', agent: 'dock1', containerName: 'dev-c01', containerId: 'x', address: 'fd00:3::100/64', mac: '02:00:00:00:00:01', image: 'img', createdAt: now });
    await sqlite.putBan({ kind: 'mac', value: '02:aa:aa:aa:aa:aa', since: now, until: null });
    await sqlite.putAgent({ name: 'dock1', url: 'https://dock1:9443', healthy: true, checkedAt: now, unhealthySince: null, draining: false });
    await sqlite.putKept({ image: 'unionize-kept/c01:1', imageId: 'a'.repeat(64), clientId: 'c01', agent: 'dock1', hostname: 'h', profile: 'p', sizeBytes: 5_000_000_000, createdAt: now, expiresAt: null });
    await sqlite.putShare({ tokenHash: 'f'.repeat(64), clientId: 'c01', filename: 'c01.tar.gz', sizeBytes: 10, createdAt: now, expiresAt: now, usedAt: null });
    const events = [leaseEventFixture(), leaseEventFixture({ action: 'del' })];
    for (const event of events) await sqlite.appendEvent({ eventId: event.eventId, clientId: 'c01', receivedAt: now, event, appliedAt: null, outcome: null, outcomeKind: null });
    await sqlite.markEventApplied({ eventId: events[0]!.eventId, appliedAt: now, outcome: 'provisioned', outcomeKind: 'provisioned' });
    await sqlite.close();

    await server!.createDatabase('site');
    const to = server!.url('site');
    const dry = await run('--from', `sqlite:${path}`, '--to', to, '--password-file', server!.passwordFile, '--dry-run', '--json');
    expect(dry.code, dry.err).toBe(0);
    expect(JSON.parse(dry.out)).toMatchObject({ dryRun: true, ok: true });
    expect(JSON.parse(dry.out).tables).toContainEqual({ table: 'clients', source: 2, target: 0 });

    const copied = await run('--from', `sqlite:${path}`, '--to', to, '--password-file', server!.passwordFile);
    expect(copied.code, copied.err).toBe(0);
    expect(copied.out).toMatch(/^TABLE\s+SQLITE\s+POSTGRESQL\n/);
    expect(copied.out).toMatch(/^clients\s+2\s+2$/m);
    expect(copied.out).toMatch(/^events\s+2\s+2$/m);
    expect(copied.out).toContain("copied: every table's count matches");

    // The pair reads what the site had, and goes on from it: the next address after the copied one, the next transition id.
    const moved = await PostgresStore.open({ connection: server!.connection('site'), prefix: 'fd00:3::/64', drawOffset: () => 0x100 + 1 });
    try {
      expect((await moved.listClients()).map((c) => c.id)).toEqual(['c01', 'c02']);
      expect(await moved.getInstance('c01')).toMatchObject({ containerName: 'dev-c01' });
      expect(await moved.allocateAddress('c01')).toBe('fd00:3::100');
      expect(await moved.allocateAddress('c02')).toBe('fd00:3::101');
      expect(await moved.listBans()).toEqual([{ kind: 'mac', value: '02:aa:aa:aa:aa:aa', since: now, until: null }]);
      expect((await moved.listKept())[0]).toMatchObject({ sizeBytes: 5_000_000_000 });
      expect(await moved.useShare('f'.repeat(64), now)).toBe(true);
      expect((await moved.unappliedEvents()).map((e) => e.eventId)).toEqual([events[1]!.eventId]);
      expect((await moved.recentEvents(10)).map((e) => e.eventId)).toEqual([events[1]!.eventId, events[0]!.eventId]);
      await moved.addTransition({ clientId: 'c01', from: 'ready', to: 'gone', reason: 'released', at: now });
      expect((await moved.listTransitions('c01', 10)).map((t) => t.to)).toEqual(['gone', 'ready']);
      const more = leaseEventFixture();
      expect(await moved.appendEvent({ eventId: more.eventId, clientId: 'c02', receivedAt: now, event: more, appliedAt: null, outcome: null, outcomeKind: null })).toEqual({ duplicate: false });
    } finally {
      await moved.close();
    }

    const again = await run('--from', `sqlite:${path}`, '--to', to, '--password-file', server!.passwordFile, '--dry-run');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/the target already holds 2 client\(s\) and 3 event\(s\): migrate into an empty database/);
  });

  it('says what is wrong with its arguments', async () => {
    expect((await run('--from', 'state.db', '--to', 'postgres://x@/y')).code).toBe(2);
    const secret = await run('--from', 'sqlite:/nonexistent.db', '--to', 'postgres://u:hunter2@db/x');
    expect(secret).toMatchObject({ code: 1, err: expect.stringMatching(/--to must not hold a password/) });
    expect((await run('--from', 'sqlite:/nonexistent.db', '--to', server!.url('postgres'), '--password-file', server!.passwordFile)).err).toMatch(/cannot open the SQLite store \/nonexistent\.db/);
  });
});
