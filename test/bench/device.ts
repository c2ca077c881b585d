import type { Lab } from '../lab/lab.js';
import type { OrchestratorApi } from '../support/orchestrator-api.js';
import { Dhclient, pingUntil } from './dhclient.js';
import { pollClient, transitionAt } from './events.js';
import { EMPTY_ADDRESS_WHY, POLL_MS } from './lease.js';
import { figure, summarize, type Figure, type Summary } from './stats.js';

/**
 * `deviceToReachable`: a lab device's dhclient is started; the clock stops
 * when the device's first ping6 of its own container is answered. In between:
 * the DHCPv6 exchange with dnsmasq, dnsmasq's hook call, the orchestrator and
 * unionize making the container, and the bench learning the container's
 * address (polling the API every 10 ms, then pinging every ~15 ms, each
 * ping waiting at most 200 ms).
 *
 * The floor is measured in the same runs: the DHCPv6 exchange alone is
 * dhclient's start to its address on eth0 (seen in /proc every 5 ms), which
 * nothing of ours slows down (the hook runs after dnsmasq has answered),
 * plus the one-container floor of leaseToReady. The device is released
 * (dhclient -r: a real `del`) and its container gone before the next run.
 */
export async function measureDeviceToReachable(lab: Lab, api: OrchestratorApi, containerFloor: Summary, runs: number): Promise<Figure[]> {
  const total: number[] = [];
  const dhcp: number[] = [];
  const ready: number[] = [];
  const failures: string[] = [];
  let stale = 0;
  const devices = lab.devices;
  if (devices.length === 0) throw new Error('the lab has no devices');
  for (let i = -1; i < runs; i++) {
    const device = devices[(i + 1) % devices.length]!;
    const client = new Dhclient(lab, device);
    let clientId: string | undefined;
    try {
      stale += await client.forget();
      const startedAt = client.start();
      const leased = await client.waitForAddress();
      ({ clientId } = await client.clientId());
      const { client: view } = await pollClient(api, clientId, (c) => c.state === 'ready' || c.state === 'failed', { intervalMs: POLL_MS });
      if (view.state !== 'ready' || !view.instance) throw new Error(`client ${view.state}: ${view.stateReason}`);
      if (!view.instance.address) throw new Error(`ready with an empty instance address: ${EMPTY_ADDRESS_WHY}`);
      const pinged = await pingUntil(device, view.instance.address.split('/')[0]!);
      if (i >= 0) {
        total.push(pinged.at - startedAt);
        dhcp.push(leased.at - startedAt);
        ready.push(transitionAt(view, 'ready')! - startedAt);
      }
    } catch (error) {
      failures.push((error as Error).message);
    } finally {
      await client.release();
      if (clientId) {
        await pollClient(api, clientId, (c) => c.state === 'gone' || c.state === 'failed', { intervalMs: 20 }).catch((e: Error) => failures.push(e.message));
      }
    }
  }
  const totalS = summarize(total);
  const dhcpS = summarize(dhcp);
  const floorP50 = dhcpS.p50 + containerFloor.p50;
  return [
    figure({
      name: 'deviceToReachable',
      metric: 'p50 ms',
      value: totalS.p50,
      floor: Math.round(floorP50 * 10) / 10,
      target: '<= 1.3x floor',
      pass: failures.length === 0 && totalS.p50 <= 1.3 * floorP50,
      detail: { total: totalS, dhcp: dhcpS, readyTransition: summarize(ready), containerFloor, failures: failures.length },
      notes: [
        `floor = DHCPv6 exchange alone (dhclient start -> address on eth0, p50 ${dhcpS.p50} ms) + one-container floor (p50 ${containerFloor.p50} ms)`,
        `orchestrator ready transition at p50 ${summarize(ready).p50} ms after dhclient start; the rest is the bench learning the address and ping`,
        'each run starts as a newcomer: no lease in dhclient\'s lease file (its DUID kept), no address on eth0',
        ...(stale ? [`${stale} stale address(es) found on eth0 before a run (removed, untimed)`] : []),
        ...(failures.length ? [`${failures.length} runs failed, e.g. ${failures[0]}`] : []),
      ],
    }),
    figure({ name: 'deviceToReachable', metric: 'p95 ms', value: totalS.p95, floor: Math.round((dhcpS.p95 + containerFloor.p95) * 10) / 10, target: 'report', pass: null }),
  ];
}
