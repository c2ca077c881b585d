import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { selfIdentity } from './pid-lock.js';
import { CALL_ENV } from '@unionize/protocol/spooled-call';
import { FLUSHER_LOCK_FILE } from '@unionize/protocol/hook-spool';
import { Spool } from './spool.js';
import { HOOK_SCRIPT, spoolWriter } from './testing/spool-writer.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

/** dnsmasq/orchestrator-hook.sh: the part of the hook dnsmasq runs, a spool writer in plain sh. */
const PARSER = fileURLToPath(new URL('../../protocol/src/dnsmasq-call.ts', import.meta.url));

const DUID = '00:03:00:01:02:aa:bb:cc:dd:01';

function setup(options: { maxEvents?: number; flusher?: 'live' | 'dead' | 'none'; spoolDir?: string } = {}) {
  const dir = makeTempDir('hook-script-');
  const spoolDir = options.spoolDir ?? join(dir, 'spool');
  const spool = new Spool({ dir: spoolDir, dhcp: { server: 'devnet', role: 'instance' } });
  const flusher = options.flusher ?? 'live';
  if (flusher !== 'none' && !options.spoolDir) {
    mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
    const self = selfIdentity();
    // A dead flusher: a pid that is no process (pid_max is at most 2^22).
    const content = flusher === 'live' ? `${self.pid} ${self.startTime ?? '-'}\n` : `4194304999 ${self.startTime ?? '-'}\n`;
    writeFileSync(join(spoolDir, FLUSHER_LOCK_FILE), content);
  }
  const writer = spoolWriter(spoolDir, dir, options.maxEvents ? { ORCHESTRATOR_HOOK_MAX_EVENTS: String(options.maxEvents) } : {});
  return { dir, spoolDir, spool, ...writer };
}

const leaseEnv = (iaid: string) => ({ DNSMASQ_IAID: iaid, DNSMASQ_MAC: '52:54:00:12:34:56', DNSMASQ_INTERFACE: 'br-dev', DNSMASQ_LEASE_EXPIRES: '2000000000' });

describe('dnsmasq/orchestrator-hook.sh', () => {
  it('spools the call as one file that the flusher reads back as the event of its [dhcp], and delivers nothing itself', () => {
    const s = setup();
    const before = Date.now();
    const r = s.call(['add', DUID, 'fd00:1::1000', 'laptop'], { ...leaseEnv('7'), DNSMASQ_TAGS: 'not-kept' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const names = s.spool.list();
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^[0-9]{15}-[0-9]+-[0-9a-f-]{36}\.call$/);
    const read = s.spool.read(names[0]!);
    expect(read.ok).toBe(true);
    const { event } = read as { event: Record<string, unknown> };
    expect(event).toMatchObject({
      server: 'devnet', role: 'instance', action: 'add', duid: DUID, iaid: '7', address: 'fd00:1::1000', hostname: 'laptop',
      mac: '52:54:00:12:34:56', interface: 'br-dev', expiresAt: new Date(2_000_000_000_000).toISOString(),
    });
    expect(names[0]).toContain(event.eventId as string);
    const seen = Date.parse(event.seenAt as string);
    expect(seen).toBeGreaterThanOrEqual(before - 1);
    expect(seen).toBeLessThanOrEqual(Date.now());
    // Only the variables the parser reads are kept.
    expect(readFileSync(join(s.spoolDir, names[0]!), 'utf8')).not.toContain('DNSMASQ_TAGS');
    expect(s.syslog()).toEqual([]);
    // No temp file left behind, and no lock taken.
    expect(readdirSync(s.spoolDir).filter((n) => n.startsWith('.') && n !== FLUSHER_LOCK_FILE)).toEqual([]);
  });

  it('keeps calls in order, even behind an entry from a clock that was ahead', () => {
    const s = setup();
    const ahead = String(Date.now() + 3_600_000).padStart(15, '0');
    writeFileSync(join(s.spoolDir, `${ahead}-1-${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}.call`), 'x');
    for (const iaid of ['1', '2', '3', '4']) expect(s.call(['old', DUID, 'fd00:1::1000'], leaseEnv(iaid)).status).toBe(0);
    const names = s.spool.list();
    expect(names).toHaveLength(5);
    expect(names.slice(1).map((n) => (s.spool.read(n) as { event: { iaid: string } }).event.iaid)).toEqual(['1', '2', '3', '4']);
    expect(Number(names[1]!.slice(0, 15))).toBe(Number(ahead) + 1);
  });

  it('stores a hostile hostname verbatim, runs none of it, and the parser drops it', () => {
    const s = setup();
    const marker = join(s.dir, 'pwned');
    const hostile = `$(touch ${marker});\`touch ${marker}\`'"\n\\0x`;
    expect(s.call(['add', DUID, 'fd00:1::1000', hostile], leaseEnv('1')).status).toBe(0);
    expect(existsSync(marker)).toBe(false);
    const read = s.spool.read(s.spool.list()[0]!) as { ok: true; event: { hostname: string | null }; warnings: string[] };
    expect(read.event.hostname).toBeNull();
    expect(read.warnings.join()).toMatch(/hostname dropped/);
  });

  it('keeps the call and says in syslog that no flusher delivers the spool when none holds it', () => {
    for (const flusher of ['none', 'dead'] as const) {
      const s = setup({ flusher });
      expect(s.call(['del', DUID, 'fd00:1::1000'], leaseEnv('1')).status).toBe(0);
      expect(s.spool.depth()).toBe(1);
      expect(s.syslog()).toEqual([expect.stringMatching(/^-t orchestrator-hook -p daemon.warning -- no flusher delivers spool .*: the call waits there$/)]);
    }
  });

  it('exits non-zero and logs the whole call when the spool cannot be written', () => {
    const blocker = join(makeTempDir('hook-script-'), 'a-file');
    writeFileSync(blocker, '');
    const s = setup({ spoolDir: join(blocker, 'spool') });
    const r = s.call(['add', DUID, 'fd00:1::1000', 'host'], leaseEnv('1'));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`event lost: cannot write into spool ${join(blocker, 'spool')}: add ${DUID} fd00:1::1000 host`);
    expect(s.syslog()).toEqual([expect.stringContaining(`-p daemon.err -- event lost: cannot write into spool`)]);
  });

  it('writes nothing for init and the other calls without a lease', () => {
    const s = setup();
    for (const action of ['init', 'tftp', 'arp-add']) expect(s.call([action, 'x'], {}).status).toBe(0);
    expect(s.spool.depth()).toBe(0);
    expect(s.syslog()).toEqual([]);
  });

  it('refuses (exit 1, logged) a call when the spool holds ORCHESTRATOR_HOOK_MAX_EVENTS', () => {
    const s = setup({ maxEvents: 2 });
    const status = ['1', '2', '3'].map((iaid) => s.call(['add', DUID, 'fd00:1::1000'], leaseEnv(iaid)).status);
    expect(status).toEqual([0, 0, 1]);
    expect(s.spool.depth()).toBe(2);
    expect(s.syslog().join('\n')).toMatch(/event lost: spool .* is full \(2 calls, ORCHESTRATOR_HOOK_MAX_EVENTS 2\): add /);
  });

  it('refuses a relative spool or a bad max, loudly', () => {
    const s = setup();
    expect(s.call(['add', DUID, 'fd00:1::1000'], { ORCHESTRATOR_HOOK_SPOOL: 'spool' }).status).toBe(1);
    expect(s.call(['add', DUID, 'fd00:1::1000'], { ORCHESTRATOR_HOOK_MAX_EVENTS: '1e3' }).status).toBe(1);
    expect(s.syslog()).toHaveLength(2);
  });

  it('keeps exactly the DNSMASQ_* variables the parser reads', () => {
    const script = readFileSync(HOOK_SCRIPT, 'utf8');
    const listed = /^CALL_ENV='([^']*)'$/m.exec(script)?.[1]?.split(' ').map((k) => `DNSMASQ_${k}`);
    const read = [...new Set(readFileSync(PARSER, 'utf8').match(/DNSMASQ_[A-Z_]+/g) ?? [])].filter((k) => k !== 'DNSMASQ_');
    expect(listed?.sort()).toEqual([...CALL_ENV].sort());
    expect([...read].sort()).toEqual([...CALL_ENV].sort());
  });
});
