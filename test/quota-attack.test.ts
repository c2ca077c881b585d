import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaseEventFixture } from '@unionize/protocol/testing/lease-event';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { OrchestratorApi, type ClientView } from './support/orchestrator-api.js';

/**
 * No device can starve the others (issue 16, point 3), with the real
 * orchestrator, unionize and dockerd, at the default quotas: one device that
 * cycles 200 DUIDs under one MAC gets max_per_mac (2) containers; 60 leases
 * whose MAC dnsmasq does not know share max_without_mac (8); and three real
 * devices (dhclient through dnsmasq and the hook) that lease while both
 * attacks are under way get their containers.
 *
 * The attacks are lease events as the device network's dnsmasq would report
 * them (signed with the hook's key, posted at once): what reaches the
 * orchestrator when a device on the network rotates its DUID (and MAC), with
 * no DHCP round trip to slow it down.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

const ATTACKER_MAC = '02:66:66:00:00:01';

describe.skipIf(skipReason)('quotas under attack, at their defaults', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 3 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir, connections: 16 });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  /** An attacker's `add` for DUID number i: under ATTACKER_MAC, or with no MAC at all. */
  const attackEvent = (i: number, mac: string | null) =>
    JSON.stringify(
      leaseEventFixture({
        duid: `00:03:00:01:${mac ? '66' : '77'}:66:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
        iaid: String(i),
        address: `${lab.prefix}:1::${((mac ? 0x6000 : 0x7000) + i).toString(16)}`,
        hostname: null,
        mac,
        interface: mac ? 'brdev' : null,
      }),
    );

  /** Posts them 20 at a time; every one is taken (202): refusals come later, as the client's state. */
  async function post(bodies: string[]): Promise<void> {
    for (let i = 0; i < bodies.length; i += 20) {
      const answers = await Promise.all(bodies.slice(i, i + 20).map((body) => api.call('POST', '/v1/lease-events', { body })));
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));
    }
  }

  /** Waits until every attacker's client has been looked at (ready, or failed with its quota reason). */
  async function settled(filter: (c: ClientView) => boolean, count: number): Promise<ClientView[]> {
    const deadline = Date.now() + 240_000;
    for (;;) {
      const mine = (await api.clients()).filter(filter);
      if (mine.length === count && mine.every((c) => c.state === 'ready' || c.state === 'failed')) return mine;
      if (Date.now() > deadline) {
        const states = mine.reduce<Record<string, number>>((acc, c) => ({ ...acc, [c.state]: (acc[c.state] ?? 0) + 1 }), {});
        throw new Error(`${mine.length} of ${count} attacker clients, not settled: ${JSON.stringify(states)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  it('holds a DUID-cycling device to max_per_mac and MAC-less leases to max_without_mac, while three real devices get their containers', async () => {
    const cycling = Array.from({ length: 200 }, (_, i) => attackEvent(i, ATTACKER_MAC));
    const macless = Array.from({ length: 60 }, (_, i) => attackEvent(i, null));
    // The real devices lease while the attacks are posted.
    const [leases] = await Promise.all([
      Promise.all([1, 2, 3].map((d) => lab.lease(d))),
      post(cycling),
      post(macless),
    ]);
    const devices = await Promise.all(leases.map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready', 240_000)));
    for (const device of devices) expect(device.instance?.containerName).toMatch(/^dev-[0-9a-f]{12}$/);

    const underMac = await settled((c) => c.mac === ATTACKER_MAC, 200);
    const withoutMac = await settled((c) => c.duid.startsWith('00:03:00:01:77:66:'), 60);
    const ready = (clients: ClientView[]) => clients.filter((c) => c.state === 'ready');
    console.log(`one MAC, 200 DUIDs: ${ready(underMac).length} ready; no MAC, 60 DUIDs: ${ready(withoutMac).length} ready`);
    expect(ready(underMac).length).toBeLessThanOrEqual(2);
    expect(ready(underMac).length).toBeGreaterThan(0);
    expect(ready(withoutMac).length).toBeLessThanOrEqual(8);
    expect(ready(withoutMac).length).toBeGreaterThan(0);
    for (const refused of [...underMac, ...withoutMac].filter((c) => c.state === 'failed')) expect(refused.stateReason).toMatch(/^quota: /);

    // What runs on the docker host: the three devices' containers and the attackers' few.
    const running = await lab.docker.listContainers({ filters: { label: ['io.unionize.managed=true'] } });
    expect(running).toHaveLength(3 + ready(underMac).length + ready(withoutMac).length);
  }, 600_000);
});
