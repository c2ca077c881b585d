import { afterEach, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { expectConverged } from './support/converged.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * Nothing lost, nothing doubled: kill or restart each part and check that
 * exactly one container per leased device remains, and none for anyone else.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('durability and convergence', () => {
  let lab: Lab | undefined;
  let api: OrchestratorApi | undefined;

  async function open(options: Parameters<typeof startLab>[0]) {
    lab = await startLab(options);
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
    return { lab, api };
  }

  afterEach(async () => {
    await api?.close();
    await lab?.stop();
    lab = undefined;
    api = undefined;
  });

  async function leaseAll(lab: Lab, devices: number[]) {
    const leases = await Promise.all(devices.map((d) => lab.lease(d)));
    return leases.map((l, i) => ({ duid: l.duid, device: devices[i]! }));
  }

  it('with [sql] enabled, a kill -9 and restart keeps every mapping', async () => {
    const { lab, api } = await open({ devices: 3, sql: true });
    const leases = await leaseAll(lab, [1, 2, 3]);
    const before = await expectConverged(lab, api, leases, 'leased');
    await lab.daemons.orchestrator!.restart({ signal: 'SIGKILL' });
    const after = await expectConverged(lab, api, leases, 'after kill -9');
    expect(after.map((c) => [c.duid, c.instance!.containerName, c.instance!.containerId, c.instance!.address])).toEqual(
      before.map((c) => [c.duid, c.instance!.containerName, c.instance!.containerId, c.instance!.address]),
    );
    // The mapping is live: a release after the restart removes the right container.
    await lab.release(2);
    await api.waitForClient(leases[1]!.duid, (c) => c.state === 'gone');
    await expectConverged(lab, api, [leases[0]!, leases[2]!], 'after release');
  });

  it('with [sql] disabled, the reconciler rebuilds state from labels and dnsmasq replays its leases', async () => {
    const { lab, api } = await open({ devices: 3, sql: false });
    const leases = await leaseAll(lab, [1, 2, 3]);
    const before = await expectConverged(lab, api, leases, 'leased');
    await lab.daemons.orchestrator!.restart({ signal: 'SIGKILL' });
    const adopted = await expectConverged(lab, api, leases, 'adopted');
    expect(adopted.map((c) => c.instance!.containerId)).toEqual(before.map((c) => c.instance!.containerId));
    expect(adopted.map((c) => c.stateReason)).toEqual(leases.map(() => expect.stringMatching(/^adopted container/)));
    // dnsmasq's restart replays `old` for every lease: the adopted clients get their lease data back.
    await lab.daemons.dnsmasq.restart();
    for (const { duid } of leases) await api.waitForClient(duid, (c) => c.hostname !== null && c.state === 'ready');
    const replayed = await expectConverged(lab, api, leases, 'replayed');
    expect(replayed.map((c) => c.instance!.containerId)).toEqual(before.map((c) => c.instance!.containerId));
    await lab.release(1);
    await api.waitForClient(leases[0]!.duid, (c) => c.state === 'gone');
    await expectConverged(lab, api, leases.slice(1), 'after release');
  });

  it('converges after dockerd restarts during provisioning and the agent is stopped for a while', async () => {
    const { lab, api } = await open({ devices: 5 });
    const first = lab.lease(1).then((l) => ({ duid: l.duid, device: 1 }));
    const second = lab.lease(2).then((l) => ({ duid: l.duid, device: 2 }));
    await lab.restartDocker();
    const early = await Promise.all([first, second, lab.lease(3).then((l) => ({ duid: l.duid, device: 3 }))]);
    await expectConverged(lab, api, early, 'dockerd restarted');

    await lab.daemons.unionize!.stop();
    const late = await leaseAll(lab, [4, 5]);
    await api.waitForClient(late[0]!.duid, (c) => c.state === 'failed');
    await new Promise((r) => setTimeout(r, 5000));
    await lab.daemons.unionize!.start();
    await expectConverged(lab, api, [...early, ...late], 'agent back');

    // A restart of dockerd with everything settled: its containers stop; the reconciler restarts and re-attaches them.
    await lab.restartDocker();
    await expectConverged(lab, api, [...early, ...late], 'settled dockerd restarted');
  }, 300_000);

  it('removes the container once the lease expires when no del ever comes (dnsmasq killed)', async () => {
    const { lab, api } = await open({ devices: 1, leaseSeconds: 120 });
    const [lease] = await leaseAll(lab, [1]);
    const [client] = await expectConverged(lab, api, [lease!], 'leased');
    await lab.daemons.dnsmasq.stop('SIGKILL');
    await lab.stopClient(1);
    const expiresAt = Date.parse((await api.get(`/v1/clients/${client!.id}`)).expiresAt);
    expect(expiresAt).toBeGreaterThan(Date.now());
    const gone = await api.waitForClient(lease!.duid, (c) => c.state === 'gone', expiresAt - Date.now() + 30_000);
    expect(Date.now()).toBeGreaterThan(expiresAt);
    expect(gone.stateReason).toMatch(/^lease expired/);
    const left = await lab.docker.listContainers({ all: true, filters: { label: ['io.unionize.managed=true'] } });
    expect(left).toEqual([]);
  }, 300_000);

  it('a kill -9 of the orchestrator during a burst of 30 leases loses nothing and doubles nothing', async () => {
    const { lab, api } = await open({ devices: 30, sql: true, hookFlushSeconds: 1 });
    const devices = Array.from({ length: 30 }, (_, i) => i + 1);
    const leasing = leaseAll(lab, devices);
    // Kill it once the first clients are being provisioned, mid-burst.
    await waitUntil(async () => (await api.clients().catch(() => [])).length >= 5, 60_000);
    await lab.daemons.orchestrator!.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 2000));
    await lab.daemons.orchestrator!.start();
    const leases = await leasing;
    await expectConverged(lab, api, leases, 'after kill -9 mid-burst', 180_000);
    expect(await api.clients()).toHaveLength(30);
  }, 400_000);

  it('events from leases taken while the orchestrator is down are spooled and applied in order once it is back', async () => {
    const { lab, api } = await open({ devices: 10, sql: true, hookFlushSeconds: 1 });
    await lab.daemons.orchestrator!.stop();
    const leases = await leaseAll(lab, Array.from({ length: 10 }, (_, i) => i + 1));
    // Two devices also release while it is down: add then del, which must be applied in that order.
    await lab.release(9);
    await lab.release(10);
    await new Promise((r) => setTimeout(r, 1000));
    await lab.daemons.orchestrator!.start();
    await expectConverged(lab, api, leases.slice(0, 8), 'spool drained', 120_000);
    for (const { duid } of leases.slice(8)) {
      const client = await api.waitForClient(duid, (c) => c.state === 'gone');
      const { events } = await api.get<{ events: Array<{ clientId: string; action: string; outcome: string }> }>('/v1/events?limit=1000');
      expect(events.filter((e) => e.clientId === client.id).map((e) => e.action).reverse()).toEqual(['add', 'del']);
    }
  }, 300_000);
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
