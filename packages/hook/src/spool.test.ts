import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LeaseEvent } from '@unionize/protocol/lease-event';
import { Spool } from './spool.js';
import { spoolWriter } from './testing/spool-writer.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

const DUID = '00:03:00:01:02:aa:bb:cc:dd:01';
const UUID = `${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`;

function setup() {
  const work = makeTempDir('hook-spool-');
  const dir = join(work, 'spool');
  const spool = new Spool({ dir, dhcp: { server: 'ctrnet', role: 'instance' } });
  const writer = spoolWriter(dir, work);
  const spoolCall = (iaid: string) => expect(writer.call(['add', DUID, 'fd00:1::1000'], { DNSMASQ_IAID: iaid }).status).toBe(0);
  return { dir, spool, spoolCall };
}

describe('Spool (the flusher reading what dnsmasq/orchestrator-hook.sh wrote)', () => {
  it('lists calls in arrival order and reads them back as events of its [dhcp]', () => {
    const s = setup();
    expect(s.spool.list()).toEqual([]); // the directory does not exist yet
    const iaids = Array.from({ length: 12 }, (_, i) => String(i));
    for (const iaid of iaids) s.spoolCall(iaid);
    expect(s.spool.depth()).toBe(12);
    const events = s.spool.list().map((n) => (s.spool.read(n) as { event: LeaseEvent }).event);
    expect(events.map((e) => e.iaid)).toEqual(iaids);
    expect(new Set(events.map((e) => `${e.server}/${e.role}`))).toEqual(new Set(['ctrnet/instance']));
  });

  it('reads a call in the format before 2 (server and role in the file: ignored, its [dhcp] wins)', () => {
    const s = setup();
    s.spoolCall('1');
    const name = `000000000000001-1-000001-${UUID}.call`;
    writeFileSync(join(s.dir, name), `orchestrator-hook-call 1\0${1_700_000_000_000_000_000}\0${UUID}\0devnet\0device\x003\0del\0${DUID}\0fd00:1::1000\0DNSMASQ_IAID=9\0`);
    expect(s.spool.list()[0]).toBe(name);
    expect(s.spool.read(name)).toMatchObject({ ok: true, event: { eventId: UUID, server: 'ctrnet', role: 'instance', action: 'del', iaid: '9' } });
  });

  it('ignores what is not a call (temp files, the lock, other names) and removes old temp files', () => {
    const s = setup();
    s.spoolCall('1');
    const [name] = s.spool.list();
    writeFileSync(join(s.dir, `.tmp-000000000000001-1-${UUID}.call`), 'orchestrator-hook-call 2\0half');
    writeFileSync(join(s.dir, `000000000000001-1-${UUID}.json`), '{}');
    expect(s.spool.list()).toEqual([name]);
    expect(s.spool.removeStaleTemp()).toEqual([]); // too young: its writer may still be at work
    const old = readdirSync(s.dir).find((n) => n.startsWith('.tmp-'))!;
    utimesSync(join(s.dir, old), new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    expect(s.spool.removeStaleTemp()).toEqual([old]);
  });

  it('names the strays (what the script never writes) and leaves its own files, the lock and rejected/ alone', () => {
    const s = setup();
    s.spoolCall('1');
    writeFileSync(join(s.dir, `000000000000001-1-${UUID}.json`), '{}');
    writeFileSync(join(s.dir, 'notes.txt'), 'x');
    writeFileSync(join(s.dir, `.tmp-000000000000002-1-${UUID}.call`), 'half');
    writeFileSync(join(s.dir, '.flusher'), '1 1');
    mkdirSync(join(s.dir, 'rejected'));
    expect(s.spool.strays()).toEqual([`000000000000001-1-${UUID}.json`, 'notes.txt']);
  });

  it('reads only regular files up to max_call_bytes: a symbolic link, a FIFO, a directory or a larger file is not a call', () => {
    const work = makeTempDir('hook-spool-');
    const dir = join(work, 'spool');
    const spool = new Spool({ dir, dhcp: { server: 'devnet', role: 'device' }, maxCallBytes: 2048 });
    const writer = spoolWriter(dir, work);
    expect(writer.call(['add', DUID, 'fd00:1::1000'], { DNSMASQ_IAID: '1' }).status).toBe(0);
    const [real] = spool.list();
    const name = (n: number) => `00000000000000${n}-1-${UUID}.call`;
    writeFileSync(join(work, 'secret'), 'orchestrator-hook-call 2\0');
    symlinkSync(join(work, 'secret'), join(dir, name(1)));
    execFileSync('mkfifo', [join(dir, name(2))]);
    mkdirSync(join(dir, name(3)));
    writeFileSync(join(dir, name(4)), Buffer.alloc(4096, 0x41));
    expect(spool.list()).toEqual([name(1), name(2), name(3), name(4), real]);
    expect([1, 2, 3, 4].map((n) => spool.read(name(n)))).toEqual([
      { ok: false, reason: 'a symbolic link' },
      { ok: false, reason: 'not a regular file' },
      { ok: false, reason: 'not a regular file' },
      { ok: false, reason: '4096 bytes, over max_call_bytes 2048' },
    ]);
    expect(spool.read(real!)).toMatchObject({ ok: true, event: { iaid: '1' } });
  });

  it('reports an unusable directory as HOOK_SPOOL_UNWRITABLE, and nothing waiting in it', () => {
    // A file where the spool's parent should be: fails for root as well (chmod would not).
    const parent = join(makeTempDir('hook-spool-'), 'not-a-dir');
    writeFileSync(parent, '');
    const spool = new Spool({ dir: join(parent, 'spool'), dhcp: { server: 'devnet', role: 'device' } });
    expect(() => spool.tryFlusherLock()).toThrow(expect.objectContaining({ code: 'HOOK_SPOOL_UNWRITABLE' }));
    expect(spool.list()).toEqual([]);
  });

  it('moves refused and unreadable calls to rejected/, out of the queue', () => {
    const s = setup();
    s.spoolCall('1');
    s.spoolCall('2');
    const [a, b] = s.spool.list();
    expect(s.spool.rejectedCount()).toBe(0);
    expect(s.spool.reject(a!, 'a test')).toBe(join(s.dir, 'rejected', a!));
    expect(s.spool.list()).toEqual([b]);
    expect(readdirSync(join(s.dir, 'rejected')).sort()).toEqual([a, `${a}.reason`]);
    expect(s.spool.rejectedCount()).toBe(1);
    writeFileSync(join(s.dir, b!), 'orchestrator-hook-call 2\0garbage\0');
    expect(s.spool.read(b!)).toMatchObject({ ok: false, reason: 'bad seen-at time' });
  });

  it('remove is idempotent', () => {
    const s = setup();
    s.spoolCall('1');
    const [name] = s.spool.list();
    s.spool.remove(name!);
    s.spool.remove(name!);
    expect(s.spool.depth()).toBe(0);
  });
});
