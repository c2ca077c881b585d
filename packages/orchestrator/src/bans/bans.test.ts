import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { SqliteStore } from '../store/sqlite-store.js';
import { Bans, banReason, covers } from './bans.js';

describe('Bans', () => {
  it('survive a restart (SQLite), keep their start when changed, and are forgotten once ended', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const clock = { now: () => new Date(now) };
    const log = pino({ level: 'silent' });
    const path = join(makeTempDir('bans-'), 'state.db');
    const entries: string[] = [];
    const files = { ban: (t: { value: string }) => entries.push(`+${t.value}`), unban: (t: { value: string }) => entries.push(`-${t.value}`) };
    const first = new SqliteStore({ path });
    const bans = await Bans.open({ store: first, clock, log, entries: files });
    await bans.add({ kind: 'mac', value: '52:54:00:00:00:01' });
    await bans.add({ kind: 'duid', value: '00:03:00:01:52:54:00:00:00:02' }, 60);
    now += 10_000;
    expect(await bans.add({ kind: 'duid', value: '00:03:00:01:52:54:00:00:00:02' }, 30)).toEqual({
      kind: 'duid', value: '00:03:00:01:52:54:00:00:00:02', since: '2026-01-01T00:00:00.000Z', until: '2026-01-01T00:00:40.000Z',
    });
    await first.close();

    const second = new SqliteStore({ path });
    const again = await Bans.open({ store: second, clock, log, entries: files });
    expect(again.list().map((b) => b.value)).toEqual(['00:03:00:01:52:54:00:00:00:02', '52:54:00:00:00:01']);
    expect(again.banOf({ duid: '00:03:00:01:52:54:00:00:00:02', mac: null })).toBeDefined();
    expect(again.banOf({ duid: '00:03:00:01:99', mac: '52:54:00:00:00:01' })?.kind).toBe('mac');
    expect(again.banOf({ duid: '00:03:00:01:99', mac: null })).toBeUndefined();
    now += 30_000;
    expect(again.banOf({ duid: '00:03:00:01:52:54:00:00:00:02', mac: null })).toBeUndefined();
    expect((await again.expire()).map((b) => b.kind)).toEqual(['duid']);
    expect(await again.expire()).toEqual([]);
    expect((await second.listBans()).map((b) => b.kind)).toEqual(['mac']);
    expect(entries).toEqual(['+52:54:00:00:00:01', '+00:03:00:01:52:54:00:00:00:02', '+00:03:00:01:52:54:00:00:00:02', '-00:03:00:01:52:54:00:00:00:02']);
    await second.close();
  });

  it('words a refusal the same for the same ban, and knows which devices a ban covers', () => {
    const ban = { kind: 'duid' as const, value: '00:03:00:01:52:54:00:00:00:02', since: 't', until: null };
    expect(banReason(ban)).toBe('banned: DUID 00:03:00:01:52:54:00:00:00:02');
    expect(banReason({ ...ban, kind: 'mac', value: '52:54:00:00:00:02', until: '2026-01-01T00:00:00.000Z' })).toBe('banned: MAC 52:54:00:00:00:02 until 2026-01-01T00:00:00.000Z');
    expect(covers(ban, { duid: ban.value, mac: null })).toBe(true);
    expect(covers({ kind: 'mac', value: '52:54:00:00:00:02' }, { duid: ban.value, mac: null })).toBe(false);
  });
});
