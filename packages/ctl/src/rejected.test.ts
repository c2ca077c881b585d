import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REJECTED_DIR, SPOOL_ENTRY, reasonLine } from '@unionize/protocol/hook-spool';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { buildProgram } from './cli.js';
import { CtlError } from './errors.js';
import { hookSpoolPlace, listRejected, resendRejected, type HookSpoolPlace } from './rejected.js';

/** dnsmasq/orchestrator-hook.sh, the spool's one writer: calls are spooled through it, not by hand. */
const HOOK_SCRIPT = fileURLToPath(new URL('../../../dnsmasq/orchestrator-hook.sh', import.meta.url));
const DUID = '00:03:00:01:02:aa:bb:cc:dd:01';

/** A spool; `spool(iaid)` spools a call through the script and returns its name; `setAside(name, why)` does what the flusher's reject does. */
function setup() {
  const work = makeTempDir('ctl-rejected-');
  const dir = join(work, 'spool');
  const bin = join(work, 'bin');
  mkdirSync(bin);
  // The script warns in syslog while no flusher runs: a logger(1) that keeps quiet.
  writeFileSync(join(bin, 'logger'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(bin, 'logger'), 0o755);
  const spooled = () => readdirSync(dir).filter((n) => SPOOL_ENTRY.test(n)).sort();
  const spool = (iaid: string, action = 'add'): string => {
    const before = new Set(existsSync(dir) ? spooled() : []);
    const r = spawnSync('/bin/sh', [HOOK_SCRIPT, action, DUID, `fd00:1::${iaid}`, `host-${iaid}`], {
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, ORCHESTRATOR_HOOK_SPOOL: dir, DNSMASQ_IAID: iaid },
    });
    if (r.status !== 0) throw new Error(`hook script failed: ${r.stderr}`);
    return spooled().find((n) => !before.has(n))!;
  };
  const rejected = join(dir, REJECTED_DIR);
  const setAside = (name: string, why: string) => {
    mkdirSync(rejected, { recursive: true });
    renameSync(join(dir, name), join(rejected, name));
    writeFileSync(join(rejected, `${name}.reason`), reasonLine(new Date('2026-01-02T03:04:05.000Z'), why));
  };
  const place: HookSpoolPlace = { dir, maxCallBytes: 64 * 1024, source: 'test' };
  return { work, dir, rejected, spool, spooled, setAside, place };
}

describe('listRejected', () => {
  it('shows each set-aside call with its event and reason, then strays; nothing when there is no rejected/', () => {
    const s = setup();
    expect(listRejected(s.place)).toEqual([]);
    const a = s.spool('1');
    const b = s.spool('2', 'del');
    s.setAside(b, 'refused by the orchestrator: HTTP 422: bad event');
    s.setAside(a, 'refused by the orchestrator: HTTP 400: nope');
    writeFileSync(join(s.rejected, 'leftover.json'), '{}');
    writeFileSync(join(s.rejected, 'leftover.json.reason'), reasonLine(new Date(0), 'not a spooled call'));
    const list = listRejected(s.place);
    expect(list.map((e) => e.name)).toEqual([a, b, 'leftover.json']);
    expect(list[0]).toMatchObject({
      resendable: true, setAsideAt: '2026-01-02T03:04:05.000Z', reason: 'refused by the orchestrator: HTTP 400: nope',
      event: { action: 'add', duid: DUID, iaid: '1', address: 'fd00:1::1', hostname: 'host-1', eventId: expect.stringMatching(/^[0-9a-f-]{36}$/) },
    });
    expect(list[0]!.problem).toBeUndefined();
    expect(list[1]!.event).toMatchObject({ action: 'del', iaid: '2' });
    expect(list[2]).toMatchObject({ resendable: false, event: null, reason: 'not a spooled call', problem: 'incomplete (no final NUL)' });
  });

  it('does not follow a link or block on a FIFO set aside as a call', () => {
    const s = setup();
    s.setAside(s.spool('1'), 'x');
    const link = `000000000000001-1-${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}.call`;
    const fifo = link.replace('-1-', '-2-');
    symlinkSync('/etc/shadow', join(s.rejected, link));
    spawnSync('mkfifo', [join(s.rejected, fifo)]);
    const byName = new Map(listRejected(s.place).map((e) => [e.name, e]));
    expect(byName.get(link)).toMatchObject({ event: null, problem: 'a symbolic link', reason: null });
    expect(byName.get(fifo)).toMatchObject({ event: null, problem: 'not a regular file' });
  });
});

describe('resendRejected', () => {
  it('puts a call back in its own place: before newer spooled calls, which keep their order; drops its reason', () => {
    const s = setup();
    const old = s.spool('1');
    s.setAside(old, 'refused');
    const newer = [s.spool('2'), s.spool('3')];
    expect(resendRejected(s.place, [old])).toEqual({ resent: [old], skipped: [] });
    expect(s.spooled()).toEqual([old, ...newer]);
    expect(readdirSync(s.rejected)).toEqual([]);
    expect(listRejected(s.place)).toEqual([]);
  });

  it('refuses a name with a slash, a name not in rejected/, one already spooled, and moves nothing then', () => {
    const s = setup();
    const a = s.spool('1');
    const b = s.spool('2');
    s.setAside(a, 'refused');
    s.setAside(b, 'refused');
    const attempt = (names: string[]) => {
      try {
        resendRejected(s.place, names);
      } catch (error) {
        expect(error).toBeInstanceOf(CtlError);
        return (error as Error).message;
      }
      throw new Error('resend did not refuse');
    };
    expect(attempt([a, `../${b}`])).toMatch(/^nothing resent: "\.\.\/.*": not a spooled call's name/);
    const absent = b.replace(/[0-9a-f]\.call$/, (m) => `${m[0] === '0' ? '1' : '0'}.call`);
    expect(attempt([a, absent])).toMatch(/: not in .*\/rejected$/);
    writeFileSync(join(s.dir, b), 'a copy');
    expect(attempt([a, b])).toMatch(/: a call of that name is already spooled$/);
    expect(readdirSync(s.rejected).sort()).toEqual([a, `${a}.reason`, b, `${b}.reason`].sort());
    expect(() => resendRejected(s.place, [])).toThrow(/give --all/);
  });

  it('--all moves every call back, oldest first, and leaves what the flusher would set aside again', () => {
    const s = setup();
    const calls = [s.spool('1'), s.spool('2'), s.spool('3')];
    for (const name of calls) s.setAside(name, 'refused');
    writeFileSync(join(s.rejected, 'leftover.json'), '{}');
    const big = `000000000000001-1-${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}.call`;
    writeFileSync(join(s.rejected, big), Buffer.alloc(s.place.maxCallBytes + 1, 0x41));
    const result = resendRejected(s.place, 'all');
    expect(result.resent).toEqual(calls);
    expect(result.skipped).toEqual([
      { name: big, why: `${s.place.maxCallBytes + 1} bytes, over max_call_bytes ${s.place.maxCallBytes}: the flusher would set it aside again` },
      { name: 'leftover.json', why: expect.stringMatching(/^not a spooled call's name/) },
    ]);
    expect(s.spooled()).toEqual(calls);
    expect(readdirSync(s.rejected).sort()).toEqual([big, 'leftover.json']);
  });
});

describe('hookSpoolPlace', () => {
  it("takes [spool] from the hook's config, ignoring its other sections, and --spool over it", () => {
    const s = setup();
    const ini = join(s.work, 'hook.ini');
    writeFileSync(ini, `[orchestrator]\nurl = https://[::1]:8443\n[dhcp]\nserver = devnet\n[spool]\ndir = /var/spool/x\nmax_call_bytes = 2048\n`);
    expect(hookSpoolPlace({ hookConfig: ini })).toEqual({ dir: '/var/spool/x', maxCallBytes: 2048, source: ini });
    expect(hookSpoolPlace({ hookConfig: ini, spool: '/elsewhere' })).toEqual({ dir: '/elsewhere', maxCallBytes: 2048, source: '--spool' });
    expect(hookSpoolPlace({}, { ORCHESTRATOR_HOOK_CONFIG: ini }).dir).toBe('/var/spool/x');
    expect(() => hookSpoolPlace({ spool: 'relative' })).toThrow(/--spool must be an absolute path/);
    writeFileSync(ini, '[spool]\ndri = /typo\n');
    expect(() => hookSpoolPlace({ hookConfig: ini })).toThrow(/Unrecognized key: "dri"/);
    expect(() => hookSpoolPlace({}, { ORCHESTRATOR_HOOK_CONFIG: join(s.work, 'none.ini') })).toThrow(/give --hook-config FILE .* or --spool DIR/);
  });
});

describe('orchestratorctl hook rejected|resend', () => {
  async function ctl(args: string[]): Promise<{ out: string; error?: Error }> {
    const out: string[] = [];
    const program = buildProgram({ out: (t) => out.push(t), err: (t) => out.push(t) });
    program.exitOverride();
    try {
      await program.parseAsync(['node', 'orchestratorctl', ...args]);
      return { out: out.join('\n') };
    } catch (error) {
      return { out: out.join('\n'), error: error as Error };
    }
  }

  it('lists as a table (device text made printable) or JSON, and resends by name', async () => {
    const s = setup();
    const name = s.spool('1');
    s.setAside(name, 'refused by the orchestrator: HTTP 400: \x1b[31mred');
    const table = await ctl(['hook', 'rejected', '--spool', s.dir]);
    expect(table.error).toBeUndefined();
    const [head, row] = table.out.split('\n');
    expect(head).toMatch(/^NAME\s+SET ASIDE\s+SEEN\s+ACTION\s+DUID\s+IAID\s+ADDRESS\s+HOSTNAME\s+REASON$/);
    expect(row).toContain(`${name}  `);
    expect(row).toMatch(/\s+add\s+00:03:00:01:02:aa:bb:cc:dd:01\s+1\s+fd00:1::1\s+host-1\s+refused by the orchestrator: HTTP 400: \?\[31mred$/);
    const json = JSON.parse((await ctl(['--json', 'hook', 'rejected', '--spool', s.dir])).out) as { spool: string; rejected: Array<{ name: string }> };
    expect(json).toMatchObject({ spool: s.dir, rejected: [{ name }] });
    expect((await ctl(['hook', 'resend', name, '--all', '--spool', s.dir])).error?.message).toBe('give names or --all, not both');
    expect((await ctl(['hook', 'resend', name, '--spool', s.dir])).out).toBe(`resent 1 into ${s.dir}: ${name}`);
    expect((await ctl(['hook', 'rejected', '--spool', s.dir])).out).toBe(`nothing set aside in ${s.dir}/rejected`);
    expect(s.spooled()).toEqual([name]);
  });
});
