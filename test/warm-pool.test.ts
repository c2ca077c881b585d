import type { AgentList, PoolStatus } from '@unionize/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * Warm pools with the real parts: `[instances] pool = 2`, so unionize keeps
 * two started containers with no network; a device's lease claims one (its
 * container is that member, renamed, attached, told its device), the pool
 * refills; `kill -9` of unionize or of the orchestrator, and a dockerd
 * restart, leave every device with exactly its own container and the pool
 * full again; a burst larger than the pool is served cold where it runs dry.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

const POOL = 2;

describe.skipIf(skipReason)('warm pool: a lease claims a started container', () => {
  let lab: Lab;
  let api: OrchestratorApi;
  /** Each device's container id once ready, by device index. */
  const containerOf = new Map<number, { name: string; id: string; address: string; duid: string }>();

  beforeAll(async () => {
    lab = await startLab({ devices: 5, pool: POOL, sql: true, hookFlushSeconds: 2 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  async function pool(): Promise<PoolStatus | undefined> {
    return (await api.get<AgentList>('/v1/agents')).agents.find((a) => a.name === 'dock1')?.pools?.find((p) => p.name === 'default');
  }

  /** Polls /v1/agents (the orchestrator asks the agent every 5 s) until the pool is as wanted. */
  async function waitForPool(done: (p: PoolStatus) => boolean, what: string, timeoutMs = 90_000): Promise<PoolStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: PoolStatus | undefined;
    for (;;) {
      last = await pool();
      if (last && done(last)) return last;
      if (Date.now() > deadline) throw new Error(`pool: ${what}: not after ${timeoutMs} ms (last: ${JSON.stringify(last ?? null)})`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async function managed() {
    return lab.docker.listContainers({ all: true, filters: { label: ['io.unionize.managed=true'] } });
  }

  async function members() {
    return (await managed()).filter((c) => c.Names[0]?.startsWith('/pool-'));
  }

  async function readyDevice(index: number): Promise<void> {
    const lease = await lab.lease(index, { timeoutMs: 120_000 });
    const client = await api.waitForClient(lease.duid, (c) => c.state === 'ready', 120_000);
    const inspected = await lab.docker.getContainer(client.instance!.containerName).inspect();
    containerOf.set(index, { name: client.instance!.containerName, id: inspected.Id, address: client.instance!.address.split('/')[0]!, duid: lease.duid });
  }

  /** Until every device's container runs again (the reconciler starts what stopped, every 5 s here). */
  async function waitForDeviceContainers(timeoutMs = 120_000): Promise<void> {
    const want = [...containerOf.values()].map((c) => `/${c.name}`).sort();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = (await managed()).filter((c) => c.State === 'running' && !c.Names[0]?.startsWith('/pool-')).map((c) => c.Names[0]).sort();
      if (JSON.stringify(running) === JSON.stringify(want)) return;
      if (Date.now() > deadline) throw new Error(`device containers: ${JSON.stringify(running)}, not ${JSON.stringify(want)}, after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** Every device leased so far has exactly its own running container, and its page names it. */
  async function everyDeviceHasItsOwn(): Promise<void> {
    const running = (await managed()).filter((c) => c.State === 'running' && !c.Names[0]?.startsWith('/pool-'));
    expect(running.map((c) => c.Names[0]).sort()).toEqual([...containerOf.values()].map((c) => `/${c.name}`).sort());
    for (const [index, c] of containerOf) {
      const client = await api.waitForClient(c.duid, (x) => x.state === 'ready' && x.instance?.containerName === c.name, 120_000);
      expect(client.instance!.containerName).toBe(c.name);
      const page = await lab.httpGet(index, `http://[${c.address}]/`);
      expect(page.body, `device ${index}'s page`).toContain(c.duid);
    }
  }

  it('keeps the pool full with containers that have no network at all', async () => {
    await waitForPool((p) => p.ready === POOL && p.size === POOL, 'full at start');
    const found = await members();
    expect(found).toHaveLength(POOL);
    for (const m of found) {
      const info = await lab.docker.getContainer(m.Id).inspect();
      expect(info.State.Running).toBe(true);
      expect(info.HostConfig.NetworkMode).toBe('none');
      // Nothing attached: the member's namespace has its loopback and nothing else, so no device reaches it.
      const links = await lab.run(lab.names.dock, ['nsenter', '-t', String(info.State.Pid), '-n', 'ip', '-o', 'link', 'show']);
      expect(links.stdout.trim().split('\n').map((l) => l.split(':')[1]!.trim())).toEqual(['lo']);
    }
  });

  it('a lease claims a member: the device\'s container is that member, its page names the device, and the pool refills', async () => {
    const before = new Set((await members()).map((m) => m.Id));
    await readyDevice(1);
    expect(before.has(containerOf.get(1)!.id)).toBe(true);
    await everyDeviceHasItsOwn();
    const refilled = await waitForPool((p) => p.ready === POOL && p.claims >= 1, 'refilled after a claim');
    expect(refilled).toMatchObject({ claims: 1, misses: 0 });
    expect((await members()).some((m) => m.Id === containerOf.get(1)!.id)).toBe(false);
  });

  it('kill -9 of unionize: the claimed container is adopted by its device, the members are back in the pool, nothing is made twice', async () => {
    const before = (await members()).map((m) => m.Id).sort();
    await lab.daemons.unionize!.restart({ signal: 'SIGKILL' });
    // Its counts start again at 0: an answer since the restart, with the same members back in the pool.
    await waitForPool((p) => p.ready === POOL && p.claims === 0, 'full after unionize restarted');
    expect((await members()).map((m) => m.Id).sort()).toEqual(before);
    await everyDeviceHasItsOwn();
    expect((await lab.docker.getContainer(containerOf.get(1)!.name).inspect()).Id).toBe(containerOf.get(1)!.id);
  });

  it('kill -9 of the orchestrator: a lease while it is down claims a member once it is back; the first device keeps its container', async () => {
    await lab.daemons.orchestrator!.stop('SIGKILL');
    // The hook spools the lease event; the flusher delivers it once the orchestrator answers.
    const leased = lab.lease(2, { timeoutMs: 120_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await lab.daemons.orchestrator!.start();
    await leased;
    await readyDevice(2);
    await everyDeviceHasItsOwn();
    expect((await lab.docker.getContainer(containerOf.get(1)!.name).inspect()).Id).toBe(containerOf.get(1)!.id);
    await waitForPool((p) => p.ready === POOL, 'full after the orchestrator restarted');
  });

  it('a burst larger than the pool: each device gets exactly one container, from the pool or cold, and claims and misses add up', async () => {
    // What /v1/agents shows is the agent's answer of up to 5 s ago: `before` may not count device 2 yet, so at least 3 more.
    const before = await waitForPool((p) => p.ready === POOL, 'full before the burst');
    await Promise.all([3, 4, 5].map((i) => readyDevice(i)));
    await everyDeviceHasItsOwn();
    const after = await waitForPool((p) => p.ready === POOL && p.claims + p.misses >= before.claims + before.misses + 3, 'the burst\'s requests counted, and refilled, after the burst');
    expect(after.claims - before.claims).toBeGreaterThanOrEqual(1);
  });

  it('a dockerd restart: claimed containers come back as their devices\', stopped members are replaced', async () => {
    const old = new Set((await members()).map((m) => m.Id));
    await lab.restartDocker();
    await waitForDeviceContainers();
    await everyDeviceHasItsOwn();
    for (const [, c] of containerOf) expect((await lab.docker.getContainer(c.name).inspect()).Id).toBe(c.id);
    // The next PUT /v1/pools (each 5 s) finds the members stopped: they go, and new ones are made.
    const deadline = Date.now() + 90_000;
    for (;;) {
      const now = await members();
      if (now.length === POOL && now.every((m) => m.State === 'running' && !old.has(m.Id))) break;
      if (Date.now() > deadline) throw new Error(`pool members after dockerd restarted: ${JSON.stringify(now.map((m) => [m.Names[0], m.State, old.has(m.Id)]))}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });

  it('a release removes the claimed container and its claim record', async () => {
    const { id, duid, name } = containerOf.get(1)!;
    await lab.release(1);
    await api.waitForClient(duid, (c) => c.state === 'gone' && c.instance === null, 120_000);
    containerOf.delete(1);
    expect((await managed()).some((c) => c.Names.includes(`/${name}`))).toBe(false);
    await expect(lab.docker.getVolume(`unionize-claim-${id}`).inspect()).rejects.toThrow(/no such volume|404/i);
  });
});
