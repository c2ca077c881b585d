import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { run, sleep } from './lab/process.js';
import { repoRoot } from './lab/repo.js';
import { getWithBearer } from './support/bearer-get.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * The spool's reader, the real flusher, with what should never be in its
 * spool: a FIFO and a symbolic link named as calls (a FIFO read would block
 * it for good), a call-named file over max_call_bytes, and a stray name. Each
 * is moved to rejected/, and a device's lease still gets through. Then
 * `orchestratorctl hook rejected|resend` (the built command) lists them and
 * returns a set-aside call to the spool, and the flusher delivers it.
 */
const CTL = join(repoRoot(), 'packages', 'ctl', 'dist', 'main.js');
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('the hook flusher reads only regular, small call files', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 1, hookFlushSeconds: 1 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  it('moves a FIFO, a symbolic link, an oversized file and a stray aside, and delivers the lease behind them', async () => {
    const spool = join(lab.dir, 'spool');
    const call = (n: number) => `00000000000000${n}-1-00000000-0000-4000-8000-00000000000${n}.call`;
    const planted = [call(1), call(2), call(3), 'leftover.json'];
    execFileSync('mkfifo', [join(spool, call(1))]);
    symlinkSync('/etc/shadow', join(spool, call(2)));
    writeFileSync(join(spool, call(3)), Buffer.alloc(1024 * 1024, 0x41));
    writeFileSync(join(spool, 'leftover.json'), '{}');

    const lease = await lab.lease(1);
    await api.waitForClient(lease.duid, (c) => c.state === 'ready', 60_000);

    const rejected = join(spool, 'rejected');
    const deadline = Date.now() + 30_000;
    const movedAside = () => (existsSync(rejected) ? readdirSync(rejected) : []);
    while (!planted.every((name) => movedAside().includes(name))) {
      if (Date.now() > deadline) throw new Error(`not all moved aside: rejected/ has ${JSON.stringify(movedAside())}`);
      await sleep(100);
    }
    expect(readdirSync(spool).filter((name) => planted.includes(name))).toEqual([]);
    // Each with its reason beside it, and their count in the orchestrator's /metrics (sent with the lease's event).
    expect(readFileSync(join(rejected, `${call(1)}.reason`), 'utf8')).toContain('not a lease event: not a regular file');
    expect(readFileSync(join(rejected, `${call(2)}.reason`), 'utf8')).toContain('not a lease event: a symbolic link');
    const token = readFileSync(lab.metricsTokenFile, 'utf8').trim();
    const metrics = await getWithBearer(`${lab.orchestratorUrl}/metrics`, lab.caFile, token);
    expect(metrics.body).toMatch(/^orchestrator_hook_rejected_events\{server="devnet"\} 4$/m);
  });

  it('orchestratorctl hook rejected lists what is set aside, and hook resend --all has the flusher deliver the calls among it', async () => {
    const spool = join(lab.dir, 'spool');
    const rejected = join(spool, 'rejected');
    // A call set aside as the flusher does it (a refusal is hard to provoke): spooled by the real script elsewhere, moved in with a reason.
    const staging = join(lab.dir, 'staging-spool');
    const duid = '00:03:00:01:02:aa:bb:cc:dd:77';
    const spooled = await run(['/bin/sh', join(repoRoot(), 'dnsmasq', 'orchestrator-hook.sh'), 'del', duid, 'fd00:1::77'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ORCHESTRATOR_HOOK_SPOOL: staging, DNSMASQ_IAID: '77' },
    });
    expect(spooled.code, spooled.stderr).toBe(0);
    const [name] = readdirSync(staging).filter((n) => n.endsWith('.call'));
    mkdirSync(rejected, { recursive: true });
    renameSync(join(staging, name!), join(rejected, name!));
    writeFileSync(join(rejected, `${name}.reason`), `${new Date().toISOString()} refused by the orchestrator: HTTP 422: a test\n`);

    const ctl = (...args: string[]) => run([process.execPath, CTL, '--json', 'hook', ...args, '--hook-config', join(lab.dir, 'hook.ini')], { timeoutMs: 30_000 });
    const listed = await ctl('rejected');
    expect(listed.code, listed.stderr).toBe(0);
    const entries = (JSON.parse(listed.stdout) as { rejected: Array<{ name: string; reason: string; event: { eventId: string; duid: string; iaid: string; action: string } | null }> }).rejected;
    const entry = entries.find((e) => e.name === name);
    expect(entry).toMatchObject({ reason: 'refused by the orchestrator: HTTP 422: a test', event: { duid, iaid: '77', action: 'del' } });
    expect(entries.length).toBeGreaterThanOrEqual(5); // and the four of the test before

    const resent = await ctl('resend', '--all');
    expect(resent.code, resent.stderr).toBe(0);
    const result = JSON.parse(resent.stdout) as { resent: string[]; skipped: Array<{ name: string }> };
    expect(result.resent).toEqual([name]);
    expect(result.skipped.map((s) => s.name)).toEqual(expect.arrayContaining(['leftover.json']));
    // The flusher delivers it, signed with the hook's key: the orchestrator has its event.
    const deadline = Date.now() + 30_000;
    const delivered = async () => ((await api.get('/v1/events?limit=1000')) as { events: Array<{ eventId: string }> }).events.some((e) => e.eventId === entry!.event!.eventId);
    while (!(await delivered())) {
      if (Date.now() > deadline) throw new Error(`resent ${name} not delivered in 30 s; spool has ${JSON.stringify(readdirSync(spool))}`);
      await sleep(200);
    }
    expect(readdirSync(rejected)).not.toContain(`${name}.reason`);
    expect(readdirSync(spool)).not.toContain(name);
  });
});
