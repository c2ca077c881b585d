import { readFileSync } from 'node:fs';
import type { AgentList, PoolStatus } from '@unionize/protocol';
import type { Lab } from '../lab/lab.js';
import { sleep } from '../lab/process.js';
import type { OrchestratorApi } from '../support/orchestrator-api.js';
import { instanceConcurrency, productRound } from './burst.js';
import { Dhclient, pingUntil } from './dhclient.js';
import { callHook, pollClient, releaseSynthetic, syntheticDevice, transitionAt } from './events.js';
import type { Floor, FloorBurst, FloorContainer } from './floor.js';
import { POLL_MS } from './lease.js';
import { figure, summarize, type Figure } from './stats.js';

/** A burst of this many devices into a pool of as many (the figure). */
export const POOL_BURST_DEVICES = 20;

export interface PoolPlan {
  /** Members kept (the burst needs as many as it has devices). */
  size: number;
  leaseRuns: number;
  deviceRuns: number;
  burstRounds: number;
}

async function poolOf(api: OrchestratorApi): Promise<PoolStatus | undefined> {
  return (await api.get<AgentList>('/v1/agents')).agents.find((a) => a.name === 'dock1')?.pools?.find((p) => p.name === 'default');
}

/**
 * Until the agent's answer shows the pool full and `counted` requests for it
 * (claims and misses): an answer that counts every request so far is one
 * made after them (the orchestrator asks each second in this phase).
 */
async function waitForFull(api: OrchestratorApi, size: number, counted: number, timeoutMs = 180_000): Promise<PoolStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: PoolStatus | undefined;
  for (;;) {
    last = await poolOf(api);
    if (last && last.size === size && last.ready === size && last.claims + last.misses >= counted) return last;
    if (Date.now() > deadline) throw new Error(`pool not full with ${counted} requests counted after ${timeoutMs} ms: ${JSON.stringify(last ?? null)}`);
    await sleep(100);
  }
}

/** unionize's own split of each claimed container's ready (its `container ready` log lines with claimMs). */
function claimTimings(lab: Lab, sinceMs: number): { claimMs: number[]; attachMs: number[]; totalMs: number[] } {
  const out = { claimMs: [] as number[], attachMs: [] as number[], totalMs: [] as number[] };
  const file = lab.daemons.unionize?.logFile;
  if (!file) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"claimMs"')) continue;
    try {
      const entry = JSON.parse(line) as { time: number; claimMs?: number; attachMs?: number; totalMs?: number; msg: string };
      if (entry.time < sinceMs || entry.msg !== 'container ready') continue;
      out.claimMs.push(entry.claimMs ?? Number.NaN);
      out.attachMs.push(entry.attachMs ?? Number.NaN);
      out.totalMs.push(entry.totalMs ?? Number.NaN);
    } catch {
      /* not one of ours */
    }
  }
  return out;
}

/** Per pool member: the memory its cgroup charges, and the resident memory of its processes (MB). */
async function memberMemory(lab: Lab): Promise<{ cgroupMb: number[]; rssMb: number[] }> {
  const members = (await lab.docker.listContainers({ filters: { label: ['io.unionize.pool'] } })).filter((c) => c.Names[0]?.startsWith('/pool-'));
  const cgroupMb: number[] = [];
  const rssMb: number[] = [];
  for (const m of members) {
    const container = lab.docker.getContainer(m.Id);
    const stats = (await container.stats({ stream: false })) as { memory_stats?: { usage?: number; stats?: { inactive_file?: number } } };
    const usage = (stats.memory_stats?.usage ?? Number.NaN) - (stats.memory_stats?.stats?.inactive_file ?? 0);
    cgroupMb.push(Math.round((usage / 1024 ** 2) * 10) / 10);
    const top = (await container.top()) as { Titles: string[]; Processes: string[][] };
    const pidColumn = top.Titles.indexOf('PID');
    let kb = 0;
    for (const p of top.Processes) {
      const status = readFileSync(`/proc/${p[pidColumn]}/status`, 'utf8');
      kb += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    }
    rssMb.push(Math.round((kb / 1024) * 10) / 10);
  }
  return { cgroupMb, rssMb };
}

/**
 * The warm pool's figures (issue 18), each against a floor from the same run:
 *
 * - `poolLeaseToReady`: leaseToReady with a full pool (the hook called for a
 *   new device, until the orchestrator's `ready`), against the cold floor
 *   (create+start+inspect+attach, interleaved run by run); target 0.35x.
 * - `poolDeviceToReachable`: a lab device's dhclient start until its ping6 of
 *   its container is answered, against the DHCPv6 exchange alone (dhclient
 *   start to its address on eth0) in the same runs; target 1.15x.
 * - `poolBurst`: 20 devices at once into a pool of 20; the wall time from
 *   the first lease event the orchestrator received to the last `ready`,
 *   against the floor's 20 cold containers at the orchestrator's concurrency;
 *   target 0.3x. (From the first dhclient start: reported beside it.)
 * - `poolMember`: memory per idle member (reported).
 * - `poolAttach`: attach p50 of claimed containers (unionize's log) beside the
 *   floor's attach (reported).
 *
 * The orchestrator is restarted with `[instances] pool = size` (and asks the
 * agent each second); every run starts with the pool full again.
 */
export async function measurePool(lab: Lab, api: OrchestratorApi, floor: Floor, plan: PoolPlan, say: (line: string) => void): Promise<Figure[]> {
  lab.configurePool(plan.size, { syncSeconds: 1 });
  await lab.daemons.orchestrator!.restart();
  const started = Date.now();
  const full = await waitForFull(api, plan.size, 0);
  let counted = full.claims + full.misses;
  say(`pool of ${plan.size} full in ${Date.now() - started} ms`);
  const figures: Figure[] = [];
  const missesAtStart = full.misses;
  const logFrom = Date.now();

  // poolLeaseToReady
  const ready: number[] = [];
  const floors: FloorContainer[] = [];
  const failures: string[] = [];
  for (let i = -1; i < plan.leaseRuns; i++) {
    await waitForFull(api, plan.size, counted);
    const device = syntheticDevice(lab);
    try {
      const hook = await callHook(lab, 'add', device);
      counted++;
      const { client } = await pollClient(api, device.clientId, (c) => c.state === 'ready' || c.state === 'failed', { intervalMs: POLL_MS });
      if (client.state !== 'ready' || !client.instance) throw new Error(`client ${client.state}: ${client.stateReason}`);
      if (i >= 0) ready.push(transitionAt(client, 'ready')! - hook.startedAt);
    } catch (error) {
      failures.push((error as Error).message);
    } finally {
      await releaseSynthetic(api, device).catch(() => undefined);
    }
    const f = await floor.one();
    if (i >= 0) floors.push(f);
  }
  const leaseMisses = (await waitForFull(api, plan.size, counted)).misses - missesAtStart;
  const readyS = summarize(ready);
  const floorS = summarize(floors.map((f) => f.totalMs));
  const timings = claimTimings(lab, logFrom);
  figures.push(figure({
    name: 'poolLeaseToReady',
    metric: 'p50 ms',
    value: readyS.p50,
    floor: floorS.p50,
    target: '<= 0.35x cold floor',
    pass: failures.length === 0 && leaseMisses === 0 && readyS.p50 <= 0.35 * floorS.p50,
    detail: { ready: readyS, floor: floorS, misses: leaseMisses, failures: failures.length, unionize: { claimMs: summarize(timings.claimMs), attachMs: summarize(timings.attachMs), totalMs: summarize(timings.totalMs) } },
    notes: [
      `pool of ${plan.size}, full before each run; figure: orchestrator's ready-transition time minus hook spawn; floor: one cold container (create+start+inspect+attach) p50 ${floorS.p50} ms`,
      `unionize's split p50: claim (record, facts, rename, inspect) ${summarize(timings.claimMs).p50} ms, attach ${summarize(timings.attachMs).p50} ms, whole request ${summarize(timings.totalMs).p50} ms`,
      ...(leaseMisses ? [`${leaseMisses} request(s) found the pool dry (made cold)`] : []),
      ...(failures.length ? [`${failures.length} runs failed, e.g. ${failures[0]}`] : []),
    ],
  }));

  // poolDeviceToReachable
  const total: number[] = [];
  const dhcp: number[] = [];
  const deviceFailures: string[] = [];
  for (let i = -1; i < plan.deviceRuns; i++) {
    await waitForFull(api, plan.size, counted);
    const device = lab.devices[(i + 1) % lab.devices.length]!;
    const client = new Dhclient(lab, device);
    let clientId: string | undefined;
    try {
      await client.forget();
      const startedAt = client.start();
      const leased = await client.waitForAddress();
      ({ clientId } = await client.clientId());
      counted++;
      const { client: view } = await pollClient(api, clientId, (c) => c.state === 'ready' || c.state === 'failed', { intervalMs: POLL_MS });
      if (view.state !== 'ready' || !view.instance?.address) throw new Error(`client ${view.state}: ${view.stateReason}`);
      const pinged = await pingUntil(device, view.instance.address.split('/')[0]!);
      if (i >= 0) {
        total.push(pinged.at - startedAt);
        dhcp.push(leased.at - startedAt);
      }
    } catch (error) {
      deviceFailures.push((error as Error).message);
    } finally {
      await client.release();
      if (clientId) await pollClient(api, clientId, (c) => c.state === 'gone' || c.state === 'failed', { intervalMs: 20 }).catch((e: Error) => deviceFailures.push(e.message));
    }
  }
  const totalS = summarize(total);
  const dhcpS = summarize(dhcp);
  figures.push(figure({
    name: 'poolDeviceToReachable',
    metric: 'p50 ms',
    value: totalS.p50,
    floor: dhcpS.p50,
    target: '<= 1.15x DHCPv6 exchange',
    pass: deviceFailures.length === 0 && totalS.p50 <= 1.15 * dhcpS.p50,
    detail: { total: totalS, dhcp: dhcpS, failures: deviceFailures.length },
    notes: [
      `floor: the DHCPv6 exchange alone in the same runs (dhclient start -> address on eth0, p50 ${dhcpS.p50} ms); what the container adds on top: ${Math.round((totalS.p50 - dhcpS.p50) * 10) / 10} ms at p50`,
      ...(deviceFailures.length ? [`${deviceFailures.length} runs failed, e.g. ${deviceFailures[0]}`] : []),
    ],
  }));

  // poolBurst
  const n = Math.min(POOL_BURST_DEVICES, plan.size, lab.devices.length);
  const devices = lab.devices.slice(0, n);
  const concurrency = instanceConcurrency(lab);
  const walls: number[] = [];
  const fromStart: number[] = [];
  const floorBursts: FloorBurst[] = [];
  let lost = 0;
  let burstMisses = 0;
  for (let r = 0; r < plan.burstRounds; r++) {
    const before = await waitForFull(api, plan.size, counted);
    const round = await productRound(lab, api, 60_000 + n * 2_000, devices);
    counted += n;
    lost += n - round.ready;
    walls.push(round.firstEventToAllReadyMs ?? Number.NaN);
    fromStart.push(round.wallMs);
    burstMisses += (await waitForFull(api, plan.size, counted)).misses - before.misses;
    floorBursts.push(await floor.burst(n, concurrency));
  }
  const wallS = summarize(walls);
  const floorWall = summarize(floorBursts.map((f) => f.wallMs));
  figures.push(figure({
    name: 'poolBurst',
    metric: `${n} devices ms`,
    value: wallS.p50,
    floor: floorWall.p50,
    target: '<= 0.3x cold floor, none lost',
    pass: lost === 0 && burstMisses === 0 && wallS.p50 <= 0.3 * floorWall.p50,
    detail: { n, rounds: plan.burstRounds, concurrency, firstEventToAllReady: wallS, dhclientStartToAllReady: summarize(fromStart), floorWall, lost, misses: burstMisses },
    notes: [
      `${n} devices into a pool of ${plan.size}; figure: first lease event received -> last ready (the DHCPv6 exchanges before it are the devices', not ours); from the first dhclient start: p50 ${summarize(fromStart).p50} ms`,
      `floor: ${n} cold containers at the orchestrator's concurrency ${concurrency}, wall p50 ${floorWall.p50} ms`,
      ...(burstMisses ? [`${burstMisses} request(s) found the pool dry (made cold)`] : []),
      ...(lost ? [`${lost} device(s) not ready in time`] : []),
    ],
  }));

  // poolMember, poolAttach
  await waitForFull(api, plan.size, counted);
  const memory = await memberMemory(lab);
  const cgroupS = summarize(memory.cgroupMb);
  const rssS = summarize(memory.rssMb);
  figures.push(figure({
    name: 'poolMember', metric: 'MB each, idle', value: cgroupS.p50, floor: null, target: 'report', pass: null,
    detail: { members: memory.cgroupMb.length, cgroupMb: cgroupS, processRssMb: rssS },
    notes: [`${memory.cgroupMb.length} idle members: cgroup memory (less inactive file cache) p50 ${cgroupS.p50} MB, their processes' RSS p50 ${rssS.p50} MB; ${plan.size} members hold about ${Math.round(cgroupS.p50 * plan.size)} MB`],
  }));
  const all = claimTimings(lab, logFrom);
  const floorAttach = summarize([...floors.map((f) => f.attachMs), ...floorBursts.flatMap((b) => b.containers.map((c) => c.attachMs))]);
  figures.push(figure({
    name: 'poolAttach', metric: 'p50 ms', value: summarize(all.attachMs).p50, floor: floorAttach.p50, target: 'report', pass: null,
    detail: { claimed: summarize(all.attachMs), floor: floorAttach },
    notes: [`attach of a claimed member (unionize, ${all.attachMs.length} claims) beside the floor's attach of a cold one (same NativeAttacher)`],
  }));
  return figures;
}
