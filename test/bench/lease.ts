import type { Lab } from '../lab/lab.js';
import { inNs } from '../lab/netns.js';
import { run } from '../lab/process.js';
import type { OrchestratorApi } from '../support/orchestrator-api.js';
import { callHook, pollClient, releaseSynthetic, syntheticDevice, transitionAt } from './events.js';
import type { Floor, FloorContainer } from './floor.js';
import { figure, summarize, type Figure, type Summary } from './stats.js';

export const POLL_MS = 10;

/** What the bench saw behind an empty instance address (orchestrator reconciler/reconciler.ts). */
export const EMPTY_ADDRESS_WHY =
  'seen when a reconcile pass lists the container while it is being made (not attached yet, view.address null) and queues adoptInstance, which runs after provisioning and overwrites the instance with address ""';

/**
 * ping6 a container as its device would, until it answers (25 tries of at
 * most 200 ms); tries 0 when it never did. Isolation lets only the device's
 * own address reach its container, so the synthetic device's address is put
 * on the device network's router (the orchestrator namespace's brdev, a /128,
 * no DAD) for the ping and taken off after.
 */
async function pingAsDevice(lab: Lab, deviceAddress: string, address: string): Promise<{ tries: number; at: number }> {
  const ip = (verb: 'add' | 'del', ...options: string[]) => run(inNs(lab.names.orch, ['ip', '-6', 'addr', verb, `${deviceAddress}/128`, 'dev', lab.names.deviceBridge, ...options]));
  const added = await ip('add', 'nodad');
  if (added.code !== 0) throw new Error(`adding the device address ${deviceAddress} to ${lab.names.deviceBridge}: ${added.stderr.trim()}`);
  try {
    for (let tries = 1; tries <= 25; tries++) {
      if ((await run(inNs(lab.names.orch, ['ping', '-6', '-n', '-c', '1', '-W', '0.2', '-I', deviceAddress, address]))).code === 0) return { tries, at: Date.now() };
    }
    return { tries: 0, at: Date.now() };
  } finally {
    await ip('del');
  }
}

export interface LeaseToReady {
  figures: Figure[];
  /** The one-container floor (create+start+inspect+attach), for deviceToReachable. */
  floor: Summary;
}

/**
 * `leaseToReady`: the real hook is called as dnsmasq would call it for a new
 * lease (`add`, a fresh DUID), and the client is polled through the API until
 * it is `ready`. The figure is the orchestrator's own time of the `ready`
 * transition (same host clock) minus the moment the hook was spawned, so the
 * polling interval is not in it; the polled time is reported beside it. Ready
 * means unionize answered that the container runs with eth1 holding its
 * address; a ping6 from the device's address (pingAsDevice) then checks that (untimed).
 * Each device is released (and its container gone) before the next.
 *
 * The floor, interleaved run by run: floor-worker's create+start+inspect+attach
 * of one container with unionize's own classes.
 */
export async function measureLeaseToReady(lab: Lab, api: OrchestratorApi, floor: Floor, runs: number): Promise<LeaseToReady> {
  const ready: number[] = [];
  const observed: number[] = [];
  const hookMs: number[] = [];
  const floors: FloorContainer[] = [];
  const failures: string[] = [];
  let unreachable = 0;
  let noAddress = 0;
  const pingTries: number[] = [];
  const toReceived: number[] = [];
  const receivedToReady: number[] = [];
  const readyToPing: number[] = [];
  for (let i = -1; i < runs; i++) {
    const warmUp = i < 0;
    const device = syntheticDevice(lab);
    try {
      const hook = await callHook(lab, 'add', device);
      const { client, observedAt } = await pollClient(api, device.clientId, (c) => c.state === 'ready' || c.state === 'failed', { intervalMs: POLL_MS });
      if (client.state !== 'ready' || !client.instance) throw new Error(`client ${client.state}: ${client.stateReason}`);
      const readyAt = transitionAt(client, 'ready')!;
      const address = client.instance.address.split('/')[0]!;
      if (!address) noAddress++;
      const ping = address ? await pingAsDevice(lab, device.address, address) : { tries: -1, at: Date.now() };
      const journal = await api.get<{ events: Array<{ duid: string; action: string; receivedAt: string }> }>('/v1/events?limit=20');
      const receivedAt = Date.parse(journal.events.find((e) => e.duid === device.duid && e.action === 'add')?.receivedAt ?? '');
      if (!warmUp) {
        toReceived.push(receivedAt - hook.startedAt);
        receivedToReady.push(readyAt - receivedAt);
        ready.push(readyAt - hook.startedAt);
        observed.push(observedAt - hook.startedAt);
        hookMs.push(hook.ms);
        if (ping.tries === 0) unreachable++;
        else if (ping.tries > 0) {
          pingTries.push(ping.tries);
          readyToPing.push(ping.at - observedAt);
        }
      }
      await releaseSynthetic(api, device);
    } catch (error) {
      failures.push((error as Error).message);
      // Leave nothing behind for the next runs to share the machine with.
      await releaseSynthetic(api, device).catch(() => undefined);
    }
    const f = await floor.one();
    if (!warmUp) floors.push(f);
  }
  const readyS = summarize(ready);
  const floorS = summarize(floors.map((f) => f.totalMs));
  const steps = (key: keyof FloorContainer) => summarize(floors.map((f) => f[key] as number)).p50;
  const notes = [
    `figure: orchestrator's ready-transition time minus hook spawn; polled (GET /v1/clients/:id every ${POLL_MS} ms) p50 ${summarize(observed).p50} ms`,
    `p50 split: hook spawn -> event received by the orchestrator ${summarize(toReceived).p50} ms, received -> ready ${summarize(receivedToReady).p50} ms (floor ${floorS.p50} ms)`,
    `hook process (spawn to exit) p50 ${summarize(hookMs).p50} ms; floor steps p50: create ${steps('createMs')}, start ${steps('startMs')}, inspect ${steps('inspectMs')}, attach ${steps('attachMs')} ms`,
  ];
  const retried = pingTries.filter((t) => t > 1).length;
  notes.push(`ping6 from the device's address once ready (untimed): first answer ${summarize(readyToPing).p50} ms after ready was seen (p50); ${retried} of ${pingTries.length} needed more than one try (200 ms each)`);
  if (noAddress > 0) notes.push(`${noAddress} ready client(s) had an empty instance address in GET /v1/clients/:id (not pinged): ${EMPTY_ADDRESS_WHY}`);
  if (unreachable > 0) notes.push(`${unreachable} ready containers did not answer ping6 from their device's address within 5 s`);
  if (failures.length > 0) notes.push(`${failures.length} runs failed, e.g. ${failures[0]}`);
  if (floors.some((f) => !f.attached)) notes.push('some floor containers were not attached after the floor attach');
  return {
    floor: floorS,
    figures: [
      figure({
        name: 'leaseToReady',
        metric: 'p50 ms',
        value: readyS.p50,
        floor: floorS.p50,
        target: '<= floor + 100 ms',
        pass: failures.length === 0 && unreachable === 0 && noAddress === 0 && readyS.p50 <= floorS.p50 + 100,
        detail: { ready: readyS, hookToReceived: summarize(toReceived), receivedToReady: summarize(receivedToReady), polled: summarize(observed), readyToPing: summarize(readyToPing), pingRetried: retried, emptyInstanceAddress: noAddress, hookProcess: summarize(hookMs), floor: floorS, pollMs: POLL_MS, failures: failures.length },
        notes,
      }),
      figure({
        name: 'leaseToReady',
        metric: 'p95 ms',
        value: readyS.p95,
        floor: floorS.p95,
        target: 'report',
        pass: null,
      }),
    ],
  };
}
