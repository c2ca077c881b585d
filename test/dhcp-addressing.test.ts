import type { EventView } from '@unionize/protocol';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { readDnsmasqLeases } from './lab/dnsmasq.js';
import { sleep } from './lab/process.js';
import { managedContainers } from './support/converged.js';
import { stopAndExpectNothingLeft } from './support/left-behind.js';
import { OrchestratorApi, type ClientView } from './support/orchestrator-api.js';

/**
 * [addressing] mode = dhcp, end to end: the container leases its own address
 * from the container bridge's dnsmasq (dhclient -6 in its namespace, run by
 * unionize), that dnsmasq's hook reports the lease in role instance, and the
 * device reaches the container at it. The same checks as
 * lease-to-container.test.ts makes in static mode, both ways a client
 * becomes ready: by the instance lease the hook reports (the agent answers
 * before the lease, [dhcp] lease_wait_ms = 0), or by the agent's answer,
 * which waited for the lease (the default).
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

/** The DUID dhclient -D LL makes from eth1's MAC (DUID-LL, RFC 8415 section 11.4). */
const duidOf = (mac: string) => `00:03:00:01:${mac}`;

function dhcpLab(dhcpLeaseWaitMs?: number, dockerHosts: 1 | 2 = 1) {
  const t = {} as {
    lab: Lab;
    api: OrchestratorApi;
    /** The container bridge's range, P:3::1000–P:3::1fff, as a /128. */
    inContainerRange: (address: string) => boolean;
    /** What the container bridge's hook reported (role instance, server ctrnet) about an address. */
    instanceEvents: (address: string) => Promise<EventView[]>;
  };
  beforeAll(async () => {
    t.lab = await startLab({ devices: 2, addressing: 'dhcp', dockerHosts, ...(dhcpLeaseWaitMs !== undefined ? { dhcpLeaseWaitMs } : {}) });
    t.api = new OrchestratorApi({ url: t.lab.orchestratorUrl, caFile: t.lab.caFile, keysDir: t.lab.keysDir });
    t.inContainerRange = (address) => new RegExp(`^${t.lab.prefix}:3::1[0-9a-f]{3}/128$`).test(address);
    t.instanceEvents = async (address) =>
      (await t.api.get<{ events: EventView[] }>('/v1/events?limit=200')).events.filter((e) => e.server === 'ctrnet' && e.address === address);
  });
  afterAll(async () => {
    await t.api?.close();
    await t.lab?.stop();
  });
  return t;
}

describe.skipIf(skipReason)('dhcp addressing: the instance lease the container bridge reports makes the client ready', () => {
  const t = dhcpLab(0);

  it('lease → container with a DHCPv6 address from the container bridge → device pings it and gets its page → release → container and its lease gone', async () => {
    const { lab, api } = t;
    const lease = await lab.lease(1);
    const client = await api.waitForClient(lease.duid, (c) => c.state === 'ready', 60_000);
    expect(client).toMatchObject({ address: lease.address, hostname: 'lab-dev-1', iaid: lease.iaid });
    const instance = client.instance!;
    expect(t.inContainerRange(instance.address), instance.address).toBe(true);
    const containerAddress = instance.address.split('/')[0]!;

    // The address is the container's own lease from the container bridge's dnsmasq, under the DUID of its MAC;
    // that dnsmasq's hook reported it in role instance, and the orchestrator bound it to the instance by MAC.
    const ctrLeases = readDnsmasqLeases(lab.ctrDnsmasqLeaseFile!);
    expect(ctrLeases.filter((l) => l.address === containerAddress)).toEqual([expect.objectContaining({ duid: duidOf(instance.mac) })]);
    const [reported] = (await t.instanceEvents(containerAddress)).filter((e) => e.action === 'add');
    expect(reported).toMatchObject({ duid: duidOf(instance.mac), outcomeKind: 'bound', outcome: `bound ${containerAddress} to ${instance.containerName}` });
    const { transitions } = await api.get<{ transitions: Array<{ from: string; to: string; reason: string }> }>(`/v1/clients/${client.id}`);
    const path = transitions.map((x) => `${x.to}: ${x.reason}`).reverse();
    expect(path.slice(-2)).toEqual([
      expect.stringMatching(/^provisioning: container \S+ on dock1: waiting for its DHCPv6 lease$/),
      `ready: container ${instance.containerName} on dock1 leased ${containerAddress}`,
    ]);

    const [container] = (await managedContainers(lab)).filter((c) => c.Names.includes(`/${instance.containerName}`));
    expect(container?.State).toBe('running');
    expect(container?.Labels['io.unionize.duid']).toBe(lease.duid);

    // Ready comes with the lease; the container's route back to the device comes with the bridge's next
    // router advertisement (its answer to the container's solicitation may wait up to 3 s, RFC 4861 6.2.6).
    const readyAt = Date.now();
    while (!(await lab.ping(1, containerAddress))) {
      if (Date.now() - readyAt > 15_000) throw new Error(`device 1 cannot ping its container at ${containerAddress} 15 s after it was ready`);
    }
    console.log(`device 1 pings its container ${Date.now() - readyAt} ms after the client was ready`);
    const page = await lab.httpGet(1, `http://[${containerAddress}]/`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(lease.duid);

    await lab.release(1);
    await api.waitForClient(lease.duid, (c) => c.state === 'gone' && c.instance === null);
    expect((await managedContainers(lab)).filter((c) => c.Names.includes(`/${instance.containerName}`))).toEqual([]);
    expect(await lab.ping(1, containerAddress)).toBe(false);
    // unionize released the container's lease: dnsmasq dropped it and its hook reported del.
    await waitForEvents(() => t.instanceEvents(containerAddress), (events) => events.some((e) => e.action === 'del'));
    expect(readDnsmasqLeases(lab.ctrDnsmasqLeaseFile!).filter((l) => l.address === containerAddress)).toEqual([]);
  });
});

describe.skipIf(skipReason)('dhcp addressing: the agent answers with the leased address', () => {
  const t = dhcpLab();

  it('two devices get two containers with two leased addresses, each reachable from its own device only', async () => {
    const { lab, api } = t;
    const leases = await Promise.all([lab.lease(1), lab.lease(2)]);
    const clients: ClientView[] = await Promise.all(leases.map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready', 60_000)));
    const addresses = clients.map((c) => c.instance!.address);
    expect(addresses.every(t.inContainerRange), addresses.join(' ')).toBe(true);
    expect(new Set(addresses).size).toBe(2);
    expect(new Set(clients.map((c) => c.instance!.containerName)).size).toBe(2);
    const leased = readDnsmasqLeases(lab.ctrDnsmasqLeaseFile!);
    for (const c of clients) {
      expect(leased.find((l) => `${l.address}/128` === c.instance!.address)?.duid).toBe(duidOf(c.instance!.mac));
    }
    for (const [i, address] of addresses.entries()) {
      const page = await lab.httpGet(i + 1, `http://[${address.split('/')[0]}]/`);
      expect(page.body).toContain(leases[i]!.duid);
      expect(page.body).not.toContain(leases[1 - i]!.duid);
    }
    const running = (await managedContainers(lab)).filter((c) => c.State === 'running');
    expect(running.map((c) => c.Names[0]).sort()).toEqual(clients.map((c) => `/${c.instance!.containerName}`).sort());
    // Ready at once: the agent's answer carried the lease; the hook's report of it came too.
    for (const c of clients) {
      expect(c.stateReason).toBe(`container ${c.instance!.containerName} on dock1 at ${c.instance!.address.split('/')[0]}`);
      await waitForEvents(() => t.instanceEvents(c.instance!.address.split('/')[0]!), (events) => events.some((e) => e.action === 'add' && e.appliedAt !== null));
    }
    await Promise.all([lab.release(1), lab.release(2)]);
    for (const l of leases) await api.waitForClient(l.duid, (c) => c.state === 'gone');
    expect(await managedContainers(lab)).toEqual([]);
  });

  it('stops leaving nothing behind, the DHCP clients of containers still running included', async () => {
    const lease = await t.lab.lease(1);
    const client = await t.api.waitForClient(lease.duid, (c) => c.state === 'ready', 60_000);
    const stateDir = join(t.lab.dir, 'dhcp-dock1', client.instance!.containerName);
    expect(existsSync(join(stateDir, 'dhclient.pid'))).toBe(true);
    await stopAndExpectNothingLeft(t.lab);
  });
});

async function waitForEvents<T>(read: () => Promise<T[]>, done: (items: T[]) => boolean, timeoutMs = 20_000): Promise<T[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const items = await read();
    if (done(items)) return items;
    if (Date.now() > deadline) throw new Error(`not as expected after ${timeoutMs} ms: ${JSON.stringify(items)}`);
    await sleep(200);
  }
}

describe.skipIf(skipReason)('dhcp addressing over two docker hosts: the second host\'s containers lease across the shared segment', () => {
  const t = dhcpLab(undefined, 2);

  it('one device per agent: each container leases from the one container bridge dnsmasq and is reached from its device', async () => {
    const { lab, api } = t;
    const leases = await Promise.all([lab.lease(1), lab.lease(2)]);
    const clients = await Promise.all(leases.map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready', 60_000)));
    expect(clients.map((c) => c.instance!.agent).sort()).toEqual(['dock1', 'dock2']);
    const leased = readDnsmasqLeases(lab.ctrDnsmasqLeaseFile!);
    for (const [i, c] of clients.entries()) {
      expect(t.inContainerRange(c.instance!.address), c.instance!.address).toBe(true);
      expect(leased.find((l) => `${l.address}/128` === c.instance!.address)?.duid).toBe(duidOf(c.instance!.mac));
      const page = await lab.httpGet(i + 1, `http://[${c.instance!.address.split('/')[0]}]/`);
      expect(page.body, `device ${i + 1} → ${c.instance!.agent}`).toContain(leases[i]!.duid);
    }
    const running = await managedContainers(lab);
    expect(running.map((c) => `${c.agent}/${c.Names[0]!.slice(1)}`).sort()).toEqual(clients.map((c) => `${c.instance!.agent}/${c.instance!.containerName}`).sort());
    await Promise.all([lab.release(1), lab.release(2)]);
    for (const l of leases) await api.waitForClient(l.duid, (c) => c.state === 'gone');
    expect(await managedContainers(lab)).toEqual([]);
    expect(readDnsmasqLeases(lab.ctrDnsmasqLeaseFile!)).toEqual([]);
  });
});
