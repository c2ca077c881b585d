import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DeliverFn } from './deliver.js';
import { flushRound } from './flusher.js';
import type { Level } from './log.js';
import { SourceValidation, type NftResult } from './sav.js';
import { Spool } from './spool.js';
import { spoolWriter } from './testing/spool-writer.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';
const DUID_A = '00:03:00:01:02:00:00:00:00:0a';
const DUID_B = '00:03:00:01:02:00:00:00:00:0b';
const NO_TABLE: NftResult = { code: 1, stdout: '', stderr: 'Error: No such file or directory\nlist set bridge unionize_sav leased\n' };

/**
 * A SourceValidation over a real spool (calls written by dnsmasq/orchestrator-hook.sh)
 * and a recording nft: `kernel` is what `nft -j list set` answers, `answer`
 * what each `nft -f -` returns.
 */
function setup(o: { kernel?: NftResult; answer?: () => NftResult } = {}) {
  const work = makeTempDir('hook-sav-');
  const dir = join(work, 'spool');
  const spool = new Spool({ dir, dhcp: { server: 'devnet', role: 'device' } });
  const writer = spoolWriter(dir, work);
  const spoolCall = (action: string, duid: string, address: string, mac?: string) => {
    const r = writer.call([action, duid, address], { DNSMASQ_IAID: '1', ...(mac ? { DNSMASQ_MAC: mac } : {}) });
    if (r.status !== 0) throw new Error(`hook script failed: ${r.stderr}`);
  };
  const written: string[] = [];
  const nft = async (args: readonly string[], stdin?: string): Promise<NftResult> => {
    if (args[0] === '-j') return o.kernel ?? NO_TABLE;
    expect(args).toEqual(['-f', '-']);
    written.push(stdin!);
    return o.answer?.() ?? { code: 0, stdout: '', stderr: '' };
  };
  const lines: { level: Level; msg: string; fields: Record<string, unknown> }[] = [];
  const log = (level: Level, msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  const stateFile = join(work, 'sav-leased.json');
  const sav = new SourceValidation({ ports: ['dev*'], nft, log, stateFile });
  /** The pairs in the last table written. */
  const lastElements = () => /elements = \{ ([^}]*) \}/.exec(written.at(-1) ?? '')?.[1]?.split(/,\s*/) ?? [];
  return { spool, spoolCall, sav, written, lines, log, lastElements, stateFile, nft };
}

describe('SourceValidation', () => {
  it('lets through each address dnsmasq leases to the MAC it leased it to, and stops it when the lease goes', async () => {
    const s = setup();
    await s.sav.start();
    expect(s.written).toHaveLength(1);
    expect(s.lastElements()).toEqual([]);
    s.spoolCall('add', DUID_A, 'fd12::1000', MAC_A);
    s.spoolCall('add', DUID_B, 'fd12::1001', MAC_B);
    await s.sav.sync(s.spool);
    expect(s.lastElements()).toEqual([`${MAC_A} . fd12::1000`, `${MAC_B} . fd12::1001`]);
    s.spoolCall('del', DUID_A, 'fd12::1000', MAC_A);
    await s.sav.sync(s.spool);
    expect(s.lastElements()).toEqual([`${MAC_B} . fd12::1001`]);
    expect(s.written).toHaveLength(3);
  });

  it('applies each call once, and writes nothing when nothing changed', async () => {
    const s = setup();
    await s.sav.start();
    s.spoolCall('add', DUID_A, 'fd12::1000', MAC_A);
    await s.sav.sync(s.spool);
    await s.sav.sync(s.spool);
    s.spoolCall('old', DUID_A, 'fd12::1000', MAC_A); // a renewal: the same pair
    await s.sav.sync(s.spool);
    expect(s.written).toHaveLength(2);
  });

  it('moves an address to the MAC it is leased to now', async () => {
    const s = setup();
    await s.sav.start();
    s.spoolCall('add', DUID_A, 'fd12::1000', MAC_A);
    s.spoolCall('add', DUID_B, 'fd12::1000', MAC_B);
    await s.sav.sync(s.spool);
    expect(s.lastElements()).toEqual([`${MAC_B} . fd12::1000`]);
  });

  it('keeps the MAC it knows when dnsmasq replays a lease without one (its lease file has none), and lets no MAC-less lease through', async () => {
    const s = setup();
    await s.sav.start();
    s.spoolCall('add', DUID_A, 'fd12::1000', MAC_A);
    await s.sav.sync(s.spool);
    s.spoolCall('old', DUID_A, 'fd12::1000');
    s.spoolCall('old', DUID_B, 'fd12::1001');
    await s.sav.sync(s.spool);
    expect(s.lastElements()).toEqual([`${MAC_A} . fd12::1000`]);
    expect(s.lines.filter((l) => l.level === 'warn').map((l) => l.fields.address)).toEqual(['fd12::1001']);
  });

  it('goes on from the pairs the kernel holds after a restart of the flusher', async () => {
    const kernel = { nftables: [{ set: { name: 'leased', elem: [{ concat: [MAC_A, 'fd12::1000'] }] } }] };
    const s = setup({ kernel: { code: 0, stdout: JSON.stringify(kernel), stderr: '' } });
    await s.sav.start();
    expect(s.lastElements()).toEqual([`${MAC_A} . fd12::1000`]);
    s.spoolCall('del', DUID_A, 'fd12::1000', MAC_A);
    await s.sav.sync(s.spool);
    expect(s.lastElements()).toEqual([]);
  });

  it('saves each table it writes, and starts from that when the kernel has none (after a reboot)', async () => {
    const s = setup();
    await s.sav.start();
    s.spoolCall('add', DUID_A, 'fd12::1000', MAC_A);
    await s.sav.sync(s.spool);
    expect(JSON.parse(readFileSync(s.stateFile, 'utf8'))).toEqual({ leased: { 'fd12::1000': MAC_A } });
    const rebooted = new SourceValidation({ ports: ['dev*'], nft: s.nft, log: s.log, stateFile: s.stateFile });
    await rebooted.start();
    expect(s.lastElements()).toEqual([`${MAC_A} . fd12::1000`]);
    expect(s.lines.at(-2)).toMatchObject({ msg: 'source validation: started', fields: { leased: 1, from: 'state file' } });
  });

  it('starts empty, counting it, from a state file that is not one, and leaves out what is not a pair', async () => {
    const s = setup();
    writeFileSync(s.stateFile, '{"leased":{"fd12::1000":"02:00:00:00:00:0a","fd12::1001":"nonsense","x":"02:00:00:00:00:0b"}}');
    await s.sav.start();
    expect(s.lastElements()).toEqual([`${MAC_A} . fd12::1000`]);
    writeFileSync(s.stateFile, '[1,2]');
    const again = new SourceValidation({ ports: ['dev*'], nft: s.nft, log: s.log, stateFile: s.stateFile });
    await again.start();
    expect(again.failures).toBe(1);
    expect(s.lastElements()).toEqual([]);
  });

  it('does not save a table nft did not take', async () => {
    const s = setup({ answer: () => ({ code: 1, stdout: '', stderr: 'Error: Operation not permitted' }) });
    await s.sav.start();
    expect(existsSync(s.stateFile)).toBe(false);
  });

  it('when nft fails: logs an error, counts it, writes the table again at the next sync, and never throws', async () => {
    let fail = true;
    const s = setup({ answer: () => (fail ? { code: 1, stdout: '', stderr: 'Error: Operation not permitted' } : { code: 0, stdout: '', stderr: '' }) });
    await s.sav.start();
    s.spoolCall('add', DUID_A, 'fd12::1000', MAC_A);
    await s.sav.sync(s.spool);
    expect(s.sav.failures).toBe(2);
    expect(s.lines.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual([
      'source validation: nft -f failed: Error: Operation not permitted',
      'source validation: nft -f failed: Error: Operation not permitted',
    ]);
    fail = false;
    await s.sav.sync(s.spool);
    expect(s.written).toHaveLength(3);
    expect(s.lastElements()).toEqual([`${MAC_A} . fd12::1000`]);
    await s.sav.sync(s.spool);
    expect(s.written).toHaveLength(3);
  });

  it('counts an nft that cannot be run at all', async () => {
    const s = setup();
    const sav = new SourceValidation({ ports: ['dev*'], nft: () => Promise.reject(new Error('spawn /usr/sbin/nft ENOENT')), log: s.log, stateFile: s.stateFile });
    await sav.start();
    expect(sav.failures).toBe(2);
    expect(s.lines.at(-1)).toMatchObject({ level: 'error', msg: 'source validation: cannot run nft: spawn /usr/sbin/nft ENOENT' });
  });
});

describe('the flusher with source validation', () => {
  it('lets a lease through before and whatever its delivery: an orchestrator that is down does not hold it back', async () => {
    const s = setup();
    await s.sav.start();
    s.spoolCall('add', DUID_A, 'fd12::1000', MAC_A);
    s.spoolCall('add', DUID_B, 'fd12::1001', MAC_B);
    const down: DeliverFn = async () => ({ ok: false, retryable: true, reason: 'connect ECONNREFUSED' });
    const round = await flushRound({ spool: s.spool, makeDeliver: () => down, log: s.log, timeoutMs: 1000, sav: s.sav });
    expect(round).toMatchObject({ delivered: 0, remaining: 2, stopped: 'retryable' });
    expect(s.lastElements()).toEqual([`${MAC_A} . fd12::1000`, `${MAC_B} . fd12::1001`]);
  });

  it('still delivers every event when nft fails', async () => {
    const s = setup({ answer: () => ({ code: 1, stdout: '', stderr: 'Error: Operation not permitted' }) });
    await s.sav.start();
    s.spoolCall('add', DUID_A, 'fd12::1000', MAC_A);
    const delivered: string[] = [];
    const ok: DeliverFn = async (e) => (delivered.push(e.address), { ok: true, status: 202 });
    expect(await flushRound({ spool: s.spool, makeDeliver: () => ok, log: s.log, timeoutMs: 1000, sav: s.sav })).toMatchObject({ delivered: 1, remaining: 0 });
    expect(delivered).toEqual(['fd12::1000']);
    expect(s.sav.failures).toBeGreaterThan(1);
  });

  it('lets a lease through when the secret cannot be read (no delivery this round)', async () => {
    const s = setup();
    await s.sav.start();
    s.spoolCall('add', DUID_A, 'fd12::1000', MAC_A);
    const round = await flushRound({ spool: s.spool, makeDeliver: () => { throw new Error('secret file missing'); }, log: s.log, timeoutMs: 1000, sav: s.sav });
    expect(round).toEqual({ error: 'secret file missing' });
    expect(s.lastElements()).toEqual([`${MAC_A} . fd12::1000`]);
  });
});
