import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { sleep } from './lab/process.js';
import { getWithBearer } from './support/bearer-get.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * The spool's reader, the real flusher, with what should never be in its
 * spool: a FIFO and a symbolic link named as calls (a FIFO read would block
 * it for good), a call-named file over max_call_bytes, and a stray name. Each
 * is moved to rejected/, and a device's lease still gets through.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('the hook flusher reads only regular, small call files', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 1, hookFlushSeconds: 1 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, secretFile: lab.secretFile });
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
});
