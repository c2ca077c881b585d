import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { sleep } from './lab/process.js';
import { expectConverged, expectReachable, managedContainers } from './support/converged.js';
import { stopAndExpectNothingLeft } from './support/left-behind.js';
import { OrchestratorApi, type ClientView } from './support/orchestrator-api.js';

/**
 * Two docker hosts (two unionize agents, two dockerds) behind one
 * orchestrator: clients spread over both within capacity; a drained agent
 * gets no new clients and keeps its own; a lost agent's clients are
 * provisioned on the other once it is declared dead, and what it left behind
 * is removed when it returns. The steps share one lab and run in order.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

const CAPACITY = 12;
const DEAD_AFTER_SECONDS = 10;

describe.skipIf(skipReason)('several agents: capacity, drain, a lost agent', () => {
  let lab: Lab;
  let api: OrchestratorApi;
  const leases: Array<{ duid: string; device: number }> = [];

  beforeAll(async () => {
    lab = await startLab({
      devices: 22,
      dockerHosts: 2,
      // Durable: the steps restart the orchestrator with a changed config.
      sql: true,
      agents: { dock1: { capacity: CAPACITY }, dock2: { capacity: CAPACITY } },
      placement: { healthIntervalSeconds: 1, deadAfterSeconds: DEAD_AFTER_SECONDS },
      reconcileSeconds: 2,
    });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  const byAgent = (clients: readonly ClientView[]) => {
    const counts: Record<string, number> = { dock1: 0, dock2: 0 };
    for (const c of clients) if (c.instance) counts[c.instance.agent] = (counts[c.instance.agent] ?? 0) + 1;
    return counts;
  };
  const ofDevices = async (devices: readonly { duid: string }[]) => {
    const all = await api.clients();
    return devices.map((d) => all.find((c) => c.duid === d.duid)!);
  };

  it(`spreads 20 devices over both agents, none over its capacity of ${CAPACITY}`, async () => {
    const taken = await Promise.all(Array.from({ length: 20 }, (_, i) => lab.lease(i + 1)));
    leases.push(...taken.map((l, i) => ({ duid: l.duid, device: i + 1 })));
    const clients = await expectConverged(lab, api, leases, '20 devices', 180_000);
    const counts = byAgent(clients);
    console.log(`20 devices: ${JSON.stringify(counts)}`);
    expect(counts.dock1).toBeGreaterThan(0);
    expect(counts.dock2).toBeGreaterThan(0);
    expect(counts.dock1).toBeLessThanOrEqual(CAPACITY);
    expect(counts.dock2).toBeLessThanOrEqual(CAPACITY);
    // Each dockerd runs exactly the containers the orchestrator placed on its agent.
    const running = await managedContainers(lab);
    expect(running.filter((c) => c.agent === 'dock1')).toHaveLength(counts.dock1!);
    expect(running.filter((c) => c.agent === 'dock2')).toHaveLength(counts.dock2!);
  }, 300_000);

  it('a drained agent gets no new clients; the ones it runs stay', async () => {
    const before = await ofDevices(leases);
    const onDock1 = before.filter((c) => c.instance!.agent === 'dock1').map((c) => c.instance!.containerId).sort();
    lab.configureAgents({ dock1: { capacity: CAPACITY, drain: true }, dock2: { capacity: CAPACITY } });
    await lab.daemons.orchestrator!.restart();

    const fresh = await Promise.all([21, 22].map(async (device) => ({ duid: (await lab.lease(device)).duid, device })));
    const clients = await expectConverged(lab, api, [...leases, ...fresh], 'dock1 drained', 120_000);
    const placed = clients.filter((c) => fresh.some((f) => f.duid === c.duid));
    expect(placed.map((c) => c.instance!.agent)).toEqual(['dock2', 'dock2']);
    // dock1 still runs exactly the containers it ran before the drain.
    const stayed = clients.filter((c) => c.instance!.agent === 'dock1').map((c) => c.instance!.containerId).sort();
    expect(stayed).toEqual(onDock1);
    expect(byAgent(clients).dock2).toBeLessThanOrEqual(CAPACITY);
    leases.push(...fresh);
  }, 300_000);

  it(`a stopped agent is declared dead after ${DEAD_AFTER_SECONDS} s: its clients are provisioned on the other, reachable from their devices`, async () => {
    // Lift the drain and make room on dock1 for everything dock2 runs.
    lab.configureAgents({ dock1: { capacity: 2 * CAPACITY }, dock2: { capacity: CAPACITY } });
    await lab.daemons.orchestrator!.restart();
    const before = await expectConverged(lab, api, leases, 'drain lifted', 120_000);
    const lost = before.filter((c) => c.instance!.agent === 'dock2');
    const lostLeases = leases.filter((l) => lost.some((c) => c.duid === l.duid));
    expect(lost.length).toBeGreaterThan(0);

    // dock2 is lost: its agent killed, its containers cut off the container segment (they still run,
    // with the same addresses and MACs their replacements will have: only the replacements must answer).
    const lostAt = Date.now();
    await lab.daemons.unionize2!.stop('SIGKILL');
    await lab.connectDockerHost(2, false);

    // Unhealthy is not dead: nothing moves before dead_after_seconds.
    await sleep((DEAD_AFTER_SECONDS - 3) * 1000);
    expect((await ofDevices(lostLeases)).map((c) => c.instance?.agent)).toEqual(lost.map(() => 'dock2'));

    const moved: ClientView[] = [];
    for (const { duid } of lostLeases) {
      moved.push(await api.waitForClient(duid, (c) => c.state === 'ready' && c.instance?.agent === 'dock1', 90_000));
    }
    const seconds = (Date.now() - lostAt) / 1000;
    console.log(`${lost.length} clients of dock2 ready on dock1 ${seconds.toFixed(1)} s after it was lost`);
    expect(seconds).toBeGreaterThanOrEqual(DEAD_AFTER_SECONDS);
    const log = readFileSync(lab.daemons.orchestrator!.logFile, 'utf8');
    expect(log).toMatch(/"msg":"agent dock2 dead"/);
    // Same addresses (the pool's), new containers on dock1, each reached from its device.
    expect(moved.map((c) => c.instance!.address)).toEqual(lost.map((c) => c.instance!.address));
    const lostIds = new Set(lost.map((c) => c.instance!.containerId));
    expect(moved.filter((c) => lostIds.has(c.instance!.containerId))).toEqual([]);
    await expectReachable(lab, lostLeases, moved, 'provisioned on dock1');
    const onDock1 = (await managedContainers(lab)).filter((c) => c.agent === 'dock1' && c.State === 'running');
    expect(onDock1).toHaveLength(leases.length);
  }, 300_000);

  it('when the lost agent returns, what it left is removed: one container per client across both hosts', async () => {
    const leftovers = (await managedContainers(lab)).filter((c) => c.agent === 'dock2');
    expect(leftovers.length).toBeGreaterThan(0);
    await lab.daemons.unionize2!.start();
    const deadline = Date.now() + 60_000;
    while ((await managedContainers(lab)).some((c) => c.agent === 'dock2')) {
      if (Date.now() > deadline) throw new Error('dock2 still runs containers 60 s after its agent returned');
      await sleep(250);
    }
    // Its containers gone, the host joins the segment again; nothing doubled, nothing lost.
    await lab.connectDockerHost(2, true);
    const clients = await expectConverged(lab, api, leases, 'dock2 back', 120_000);
    expect(byAgent(clients)).toEqual({ dock1: leases.length, dock2: 0 });
  }, 300_000);

  it('draining an agent with move (POST /v1/agents/:name/drain) moves its clients to the other, each still reached', async () => {
    lab.configureAgents({ dock1: { capacity: 2 * CAPACITY }, dock2: { capacity: 2 * CAPACITY } });
    await lab.daemons.orchestrator!.restart();
    const before = await expectConverged(lab, api, leases, 'room on both', 120_000);
    expect(before.every((c) => c.instance!.agent === 'dock1')).toBe(true);
    const { status, json } = await api.call('POST', '/v1/agents/dock1/drain', { body: JSON.stringify({ drain: true, move: true }) });
    expect(status).toBe(202);
    expect(json).toEqual({ agent: 'dock1', draining: true, moving: leases.length });
    const moved: ClientView[] = [];
    for (const { duid } of leases) moved.push(await api.waitForClient(duid, (c) => c.state === 'ready' && c.instance?.agent === 'dock2', 120_000));
    expect(moved.map((c) => c.instance!.address)).toEqual(before.map((c) => c.instance!.address));
    const clients = await expectConverged(lab, api, leases, 'moved to dock2', 120_000);
    expect(byAgent(clients)).toEqual({ dock1: 0, dock2: leases.length });
  }, 300_000);

  it('stops leaving nothing behind: both docker hosts, both dockerds, every namespace', async () => {
    await stopAndExpectNothingLeft(lab);
  });
});
