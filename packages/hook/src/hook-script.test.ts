import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { selfIdentity } from './pid-lock.js';
import { CALL_ENV } from './spooled-call.js';
import { FLUSHER_LOCK_FILE, Spool } from './spool.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

/** dnsmasq/orchestrator-hook.sh: the part of the hook dnsmasq runs, a spool writer in plain sh. */
const SCRIPT = fileURLToPath(new URL('../../../dnsmasq/orchestrator-hook.sh', import.meta.url));
const PARSER = fileURLToPath(new URL('../../protocol/src/dnsmasq-call.ts', import.meta.url));

const DUID = '00:03:00:01:02:aa:bb:cc:dd:01';

function setup(options: { maxEvents?: number; flusher?: 'live' | 'dead' | 'none'; spoolDir?: string } = {}) {
  const dir = makeTempDir('hook-script-');
  const spoolDir = options.spoolDir ?? join(dir, 'spool');
  const config = join(dir, 'hook.ini');
  writeFileSync(config, `; the hook's config
[orchestrator]
url = https://[::1]:8443
secret_file = /nonexistent

[dhcp]
server = devnet
role   =  instance

[spool]
dir = ${spoolDir}
${options.maxEvents ? `max_events = ${options.maxEvents}` : ''}
`);
  // Stands in for node: records how it was called (the fallback path).
  const nodeCalls = join(dir, 'node-calls');
  const fakeNode = join(dir, 'node');
  writeFileSync(fakeNode, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${nodeCalls}'\n`, { mode: 0o755 });
  const spool = new Spool({ dir: spoolDir, maxEvents: 100 });
  const flusher = options.flusher ?? 'live';
  if (flusher !== 'none' && !options.spoolDir) {
    mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
    const self = selfIdentity();
    // A dead flusher: a pid that is no process (pid_max is at most 2^22).
    const content = flusher === 'live' ? `${self.pid} ${self.startTime ?? '-'}\n` : `4194304999 ${self.startTime ?? '-'}\n`;
    writeFileSync(join(spoolDir, FLUSHER_LOCK_FILE), content);
  }
  const call = (args: string[], env: Record<string, string> = {}) =>
    spawnSync('/bin/sh', [SCRIPT, ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ORCHESTRATOR_HOOK_CONFIG: config, ORCHESTRATOR_HOOK_NODE: fakeNode, ORCHESTRATOR_HOOK_BUNDLE: '/hook.mjs', ...env },
    });
  const nodeRuns = () => (existsSync(nodeCalls) ? readFileSync(nodeCalls, 'utf8').trim().split('\n') : []);
  return { dir, spoolDir, spool, call, nodeRuns };
}

const leaseEnv = (iaid: string) => ({ DNSMASQ_IAID: iaid, DNSMASQ_MAC: '52:54:00:12:34:56', DNSMASQ_INTERFACE: 'br-dev', DNSMASQ_LEASE_EXPIRES: '2000000000' });

describe('dnsmasq/orchestrator-hook.sh', () => {
  it('spools the call as one file that reads back as the event a direct call makes, and leaves delivery to the flusher', () => {
    const s = setup();
    const before = Date.now();
    const r = s.call(['add', DUID, 'fd00:1::1000', 'laptop'], { ...leaseEnv('7'), DNSMASQ_TAGS: 'not-kept' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const names = s.spool.list();
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^[0-9]{15}-[0-9]+-000000-[0-9a-f-]{36}\.call$/);
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
    expect(s.nodeRuns()).toEqual([]);
    // No temp file left behind.
    expect(readdirSync(s.spoolDir).filter((n) => n.startsWith('.tmp'))).toEqual([]);
  });

  it('keeps calls in order, even behind an entry from a clock that was ahead', () => {
    const s = setup();
    const ahead = String(Date.now() + 3_600_000).padStart(15, '0');
    writeFileSync(join(s.spoolDir, `${ahead}-1-000001-${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}.json`), '{}');
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

  it('hands over to node (one --flush --budget round) when no flusher holds the spool', () => {
    for (const flusher of ['none', 'dead'] as const) {
      const s = setup({ flusher });
      expect(s.call(['del', DUID, 'fd00:1::1000'], leaseEnv('1')).status).toBe(0);
      expect(s.spool.depth()).toBe(1);
      expect(s.nodeRuns()).toEqual(['/hook.mjs --flush --budget']);
    }
  });

  it('hands the call itself to node when the spool cannot be written', () => {
    const blocker = join(makeTempDir('hook-script-'), 'a-file');
    writeFileSync(blocker, '');
    const s = setup({ spoolDir: join(blocker, 'spool') });
    expect(s.call(['add', DUID, 'fd00:1::1000', 'host'], leaseEnv('1')).status).toBe(0);
    expect(s.nodeRuns()).toEqual([`/hook.mjs add ${DUID} fd00:1::1000 host`]);
  });

  it('writes nothing for init and the other calls without a lease', () => {
    const s = setup();
    for (const action of ['init', 'tftp', 'arp-add']) expect(s.call([action, 'x'], {}).status).toBe(0);
    expect(s.spool.depth()).toBe(0);
    expect(s.nodeRuns()).toEqual([]);
  });

  it('drops (and logs) a call when the spool holds max_events', () => {
    const s = setup({ maxEvents: 2 });
    for (const iaid of ['1', '2', '3']) expect(s.call(['add', DUID, 'fd00:1::1000'], leaseEnv(iaid)).status).toBe(0);
    expect(s.spool.depth()).toBe(2);
  });

  it('keeps exactly the DNSMASQ_* variables the parser reads', () => {
    const script = readFileSync(SCRIPT, 'utf8');
    const listed = /^CALL_ENV='([^']*)'$/m.exec(script)?.[1]?.split(' ').map((k) => `DNSMASQ_${k}`);
    const read = [...new Set(readFileSync(PARSER, 'utf8').match(/DNSMASQ_[A-Z_]+/g) ?? [])].filter((k) => k !== 'DNSMASQ_');
    expect(listed?.sort()).toEqual([...CALL_ENV].sort());
    expect([...read].sort()).toEqual([...CALL_ENV].sort());
  });
});
