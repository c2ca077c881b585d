import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LeaseEvent } from '@unionize/protocol/lease-event';
import { Spool, SpoolError } from './spool.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

function event(n = 0): LeaseEvent {
  return {
    eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add',
    duid: `00:03:00:01:02:aa:bb:cc:dd:${(n % 256).toString(16).padStart(2, '0')}`, iaid: String(n), address: 'fd00:1::1000',
    hostname: null, mac: null, interface: null, expiresAt: null, seenAt: new Date().toISOString(),
  };
}

const tmp = () => makeTempDir('hook-spool-');

describe('Spool', () => {
  it('lists events in arrival order and reads them back', () => {
    const spool = new Spool({ dir: join(tmp(), 'spool'), maxEvents: 100 });
    expect(spool.list()).toEqual([]); // the directory does not exist yet
    const events = Array.from({ length: 25 }, (_, i) => event(i));
    const names = events.map((e) => spool.put(e));
    expect(spool.list()).toEqual(names);
    expect(spool.depth()).toBe(25);
    expect(spool.list().map((n) => spool.read(n))).toEqual(events.map((e) => ({ ok: true, event: e })));
  });

  it('keeps arrival order when the clock steps backwards', () => {
    let clock = 2_000_000_000_000;
    const spool = new Spool({ dir: tmp(), maxEvents: 100, now: () => clock });
    const first = spool.put(event(1));
    clock -= 3_600_000; // NTP stepped the clock back an hour
    const second = spool.put(event(2));
    clock += 10;
    const third = spool.put(event(3));
    expect(spool.list()).toEqual([first, second, third]);
    expect([first, second, third].map((n) => (spool.read(n) as { event: LeaseEvent }).event.iaid)).toEqual(['1', '2', '3']);
  });

  it('stores the event unsigned, as JSON, in a file only its owner reads', () => {
    const dir = tmp();
    const spool = new Spool({ dir, maxEvents: 10 });
    const e = event();
    const name = spool.put(e);
    expect(name).toMatch(new RegExp(`^[0-9]{15}-${process.pid}-[0-9]{6}-${e.eventId}\\.json$`));
    expect(JSON.parse(readFileSync(join(dir, name), 'utf8'))).toEqual(e);
    expect(readdirSync(dir)).toEqual([name]); // no temp file left
  });

  it('ignores temp files (a crash between write and rename) and removes them once old', () => {
    const dir = tmp();
    const spool = new Spool({ dir, maxEvents: 10 });
    const name = spool.put(event());
    writeFileSync(join(dir, `.tmp-000000000000001-1-000001-${randomUUID()}.json`), '{"eventId":"half');
    expect(spool.list()).toEqual([name]);
    expect(spool.removeStaleTemp()).toEqual([]); // too young: its writer may still be at work
    const old = readdirSync(dir).find((n) => n.startsWith('.tmp-'))!;
    utimesSync(join(dir, old), new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    expect(spool.removeStaleTemp()).toEqual([old]);
    expect(readdirSync(dir)).toEqual([name]);
  });

  it('refuses a new event when full', () => {
    const spool = new Spool({ dir: tmp(), maxEvents: 3 });
    for (let i = 0; i < 3; i++) spool.put(event(i));
    const error = (() => {
      try {
        spool.put(event(9));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(SpoolError);
    expect(error).toMatchObject({ code: 'HOOK_SPOOL_FULL' });
    expect(spool.depth()).toBe(3);
  });

  it('reports an unusable directory as HOOK_SPOOL_UNWRITABLE', () => {
    // A file where the spool's parent should be: fails for root as well (chmod would not).
    const parent = join(tmp(), 'not-a-dir');
    writeFileSync(parent, '');
    const spool = new Spool({ dir: join(parent, 'spool'), maxEvents: 10 });
    expect(() => spool.put(event())).toThrow(expect.objectContaining({ code: 'HOOK_SPOOL_UNWRITABLE' }));
    expect(() => spool.tryLock()).toThrow(expect.objectContaining({ code: 'HOOK_SPOOL_UNWRITABLE' }));
    expect(spool.list()).toEqual([]); // it cannot exist, so nothing waits in it
  });

  it('moves refused and unreadable events to rejected/, out of the queue', () => {
    const dir = tmp();
    const spool = new Spool({ dir, maxEvents: 10 });
    const a = spool.put(event(1));
    const b = spool.put(event(2));
    expect(spool.reject(a)).toBe(join(dir, 'rejected', a));
    expect(spool.list()).toEqual([b]);
    expect(readdirSync(join(dir, 'rejected'))).toEqual([a]);

    writeFileSync(join(dir, b), '{"eventId": 42}');
    expect(spool.read(b)).toMatchObject({ ok: false, reason: expect.stringContaining('not a lease event') });
    const fresh = event(3);
    const kept = spool.rejectEvent(fresh);
    expect(JSON.parse(readFileSync(kept, 'utf8'))).toEqual(fresh);
    expect(spool.list()).toEqual([b]);
  });

  it('remove is idempotent', () => {
    const spool = new Spool({ dir: tmp(), maxEvents: 10 });
    const name = spool.put(event());
    spool.remove(name);
    spool.remove(name);
    expect(spool.depth()).toBe(0);
  });
});
