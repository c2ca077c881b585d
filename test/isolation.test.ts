import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type DeviceLease, type Lab } from './lab/lab.js';
import { run, sleep } from './lab/process.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * Isolation, on by default (unionize's nftables table `bridge unionize` in
 * the docker host's namespace): with real dnsmasq, dhclient, dockerd and
 * both daemons, three devices each reach their own container (ICMPv6 and
 * TCP) and no other; a container reaches neither another container (on the
 * link, or through the router) nor another device; a device whose address
 * changes keeps reaching its own container from the new address only, also
 * across a restart of the agent; after its release it reaches nothing, and
 * the filter no longer names it. Then the same in DHCP addressing and across
 * two docker hosts, egress to a prefix, and mode open as the control.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

interface Provisioned {
  device: number;
  lease: DeviceLease;
  containerName: string;
  containerAddress: string;
}

describe.skipIf(skipReason)('isolation: each device reaches its own container and nothing else', () => {
  let lab: Lab;
  let api: OrchestratorApi;
  const provisioned: Provisioned[] = [];

  beforeAll(async () => {
    lab = await startLab({ devices: 3 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  /** ping -6 from a device, optionally from one of its addresses. */
  const devicePing = async (device: number, address: string, from?: string) =>
    (await lab.run(lab.devices[device - 1]!, ['ping', '-6', '-n', '-c', '1', '-W', '2', ...(from ? ['-I', from] : []), address])).code === 0;

  const pidOf = async (containerName: string) => (await lab.docker.getContainer(containerName).inspect()).State.Pid;

  /** A command in a container's network namespace (the lab's dockerd made it). */
  const inContainer = async (containerName: string, argv: readonly string[]) => run(['nsenter', '-t', String(await pidOf(containerName)), '-n', ...argv]);

  const containerPing = async (containerName: string, address: string) =>
    (await inContainer(containerName, ['ping', '-6', '-n', '-c', '1', '-W', '2', address])).code === 0;

  /** The device addresses in the docker host's filter's pairs, as nft lists them. */
  const filterDevices = async (): Promise<string[]> => {
    const listed = await lab.run(lab.names.dock, ['nft', '-j', 'list', 'set', 'bridge', 'unionize', 'device_container_pairs']);
    expect(listed.code, listed.stderr).toBe(0);
    const set = (JSON.parse(listed.stdout) as { nftables: Array<{ set?: { elem?: Array<{ concat: string[] }> } }> }).nftables.find((o) => o.set)!.set!;
    return (set.elem ?? []).map((e) => e.concat[0]!);
  };

  /** Poll a condition that becomes true once something else settles (a lease event applied, the filter rewritten). */
  async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not so after ${timeoutMs} ms`);
      await sleep(250);
    }
  }

  it('three devices: each reaches its own container over ICMPv6 and TCP, none reaches another\'s', async () => {
    const leases = await Promise.all([1, 2, 3].map((i) => lab.lease(i)));
    for (const [i, lease] of leases.entries()) {
      const client = await api.waitForClient(lease.duid, (c) => c.state === 'ready');
      provisioned.push({ device: i + 1, lease, containerName: client.instance!.containerName, containerAddress: client.instance!.address.split('/')[0]! });
    }
    for (const own of provisioned) {
      expect(await devicePing(own.device, own.containerAddress), `device ${own.device} pings its container`).toBe(true);
      const page = await lab.httpGet(own.device, `http://[${own.containerAddress}]/`);
      expect(page.status, page.error).toBe(200);
      expect(page.body).toContain(own.lease.duid);
    }
    // Every device tries every other device's container, all at once (each try waits out its timeout).
    const tries = provisioned.flatMap((own) => provisioned.filter((p) => p !== own).map((other) => ({ own, other })));
    const answers = await Promise.all(
      tries.map(async ({ own, other }) => ({
        what: `device ${own.device} → container of device ${other.device}`,
        ping: await devicePing(own.device, other.containerAddress),
        http: (await lab.httpGet(own.device, `http://[${other.containerAddress}]/`)).status,
      })),
    );
    expect(answers).toEqual(tries.map(({ own, other }) => ({ what: `device ${own.device} → container of device ${other.device}`, ping: false, http: 0 })));
  });

  it('a container reaches its own device and no other container or device, on the link or through the router', async () => {
    const [a, b, c] = provisioned as [Provisioned, Provisioned, Provisioned];
    // The control: the same probe does pass where the filter allows it.
    expect(await containerPing(a.containerName, a.lease.address)).toBe(true);
    expect(await containerPing(a.containerName, lab.addresses.dockBridge)).toBe(true);
    // On the link (the containers share P:3::/64).
    expect(await containerPing(a.containerName, b.containerAddress)).toBe(false);
    expect(await containerPing(a.containerName, c.containerAddress)).toBe(false);
    const tcp = await inContainer(a.containerName, ['curl', '-sS', '-g', '--max-time', '3', `http://[${b.containerAddress}]/`]);
    expect(tcp.code).not.toBe(0);
    // Other devices, and anything else (egress none): here the orchestrator's end of the transit link.
    expect(await containerPing(a.containerName, b.lease.address)).toBe(false);
    expect(await containerPing(a.containerName, lab.addresses.orchTransit)).toBe(false);
    // Through the router: a host route via the gateway instead of the link.
    const routed = await inContainer(a.containerName, ['ip', '-6', 'route', 'replace', `${b.containerAddress}/128`, 'via', lab.addresses.dockBridge, 'dev', 'eth1']);
    expect(routed.code, routed.stderr).toBe(0);
    expect(await containerPing(a.containerName, b.containerAddress)).toBe(false);
  });

  it('a device whose address changes reaches its own container from the new address, not the old one', async () => {
    const own = provisioned[0]!;
    const moved = `${lab.prefix}:1::2e01`;
    const ns = lab.devices[own.device - 1]!.netns;
    const added = await lab.run(ns, ['ip', '-6', 'addr', 'add', `${moved}/64`, 'dev', 'eth0', 'nodad']);
    expect(added.code, added.stderr).toBe(0);
    expect(await devicePing(own.device, own.containerAddress, moved)).toBe(false);
    // What dnsmasq's hook sends for a renewal that brought another address (same DUID and IAID).
    const event = {
      eventId: randomUUID(), server: 'devnet', role: 'device', action: 'old', duid: own.lease.duid, iaid: own.lease.iaid, address: moved,
      hostname: own.lease.hostname, mac: lab.devices[own.device - 1]!.mac, interface: 'brdev', expiresAt: null, seenAt: new Date().toISOString(),
    };
    const posted = await api.call('POST', '/v1/lease-events', { body: JSON.stringify(event) });
    expect(posted.status, JSON.stringify(posted.json)).toBeLessThan(300);
    await api.waitForClient(own.lease.duid, (c) => c.address === moved && c.state === 'ready');
    await eventually('the device reaches its container from its new address', () => devicePing(own.device, own.containerAddress, moved));
    expect(await devicePing(own.device, own.containerAddress, own.lease.address)).toBe(false);
    const page = await lab.httpGet(own.device, `http://[${own.containerAddress}]/`);
    expect(page.status, page.error).toBe(200);
    // Still no one else's.
    expect(await devicePing(own.device, provisioned[1]!.containerAddress, moved)).toBe(false);
  });

  it('a restarted agent rebuilds the filter from its containers\' labels; the reconcile pass brings the moved address back', async () => {
    const [moved, same, other] = provisioned as [Provisioned, Provisioned, Provisioned];
    const movedAddress = `${lab.prefix}:1::2e01`;
    await lab.daemons.unionize!.restart();
    // Written before it serves: what the labels say holds as soon as it answers.
    expect(await devicePing(same.device, same.containerAddress)).toBe(true);
    expect(await devicePing(other.device, same.containerAddress)).toBe(false);
    // The label still names the first address; the orchestrator sees the agent let in another than its device's, and sends the request again.
    await eventually('the moved device reaches its container again', () => devicePing(moved.device, moved.containerAddress, movedAddress));
    expect(await devicePing(moved.device, moved.containerAddress, moved.lease.address)).toBe(false);
    expect(await filterDevices()).not.toContain(moved.lease.address);
  });

  it('after its release a device reaches nothing, and the filter no longer names it', async () => {
    const own = provisioned[1]!;
    expect(await filterDevices()).toContain(own.lease.address);
    await lab.release(own.device);
    await api.waitForClient(own.lease.duid, (c) => c.state === 'gone' && c.instance === null);
    expect(await filterDevices()).not.toContain(own.lease.address);
    for (const p of provisioned) expect(await devicePing(own.device, p.containerAddress)).toBe(false);
    // The others are untouched.
    expect(await devicePing(provisioned[2]!.device, provisioned[2]!.containerAddress)).toBe(true);
  });
});


/**
 * Two devices, each with its container, in a lab of the given kind: whether
 * device 1 and container 1 reach device 2's container, and whether container
 * 1 reaches the orchestrator's end of the transit link (P:2::1, beyond its
 * device: egress). Container 1 always reaches its own device.
 */
describe.skipIf(skipReason).each([
  { kind: 'dhcp addressing (the container leases its own address)', options: { addressing: 'dhcp' as const }, reachesOthers: false, egress: false },
  { kind: 'egress = the transit prefix', options: { isolationEgress: (prefix: string) => `${prefix}:2::/64` }, reachesOthers: false, egress: true },
  {
    kind: 'two docker hosts on one segment (one container on each)',
    options: { dockerHosts: 2 as const, agents: { dock1: { capacity: 1 }, dock2: { capacity: 1 } } },
    reachesOthers: false,
    egress: false,
  },
  { kind: 'mode = open (the control: without the filter, all of it)', options: { isolation: 'open' as const }, reachesOthers: true, egress: true },
])('isolation with $kind', ({ options, reachesOthers, egress }) => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 2, ...options });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  it(`each device reaches its own container; device 1 and container 1 ${reachesOthers ? 'also reach' : 'do not reach'} device 2's; container 1 ${egress ? 'reaches' : 'does not reach'} P:2::1`, async () => {
    const leases = await Promise.all([lab.lease(1), lab.lease(2)]);
    const clients = await Promise.all(leases.map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready', 60_000)));
    const addresses = clients.map((c) => c.instance!.address.split('/')[0]!);
    // With two docker hosts, one container on each (capacity 1): the filter holds across the shared segment.
    expect(new Set(clients.map((c) => c.instance!.agent)).size).toBe(lab.dockerHosts.length);
    for (const [i, address] of addresses.entries()) {
      const page = await lab.httpGet(i + 1, `http://[${address}]/`);
      expect(page.status, page.error).toBe(200);
      expect(page.body).toContain(leases[i]!.duid);
      expect(await lab.ping(i + 1, address)).toBe(true);
    }
    expect(await lab.ping(1, addresses[1]!)).toBe(reachesOthers);
    expect((await lab.httpGet(1, `http://[${addresses[1]}]/`)).status === 200).toBe(reachesOthers);
    const host = lab.dockerHosts.find((h) => h.agent === clients[0]!.instance!.agent)!;
    const pid = (await host.docker.getContainer(clients[0]!.instance!.containerName).inspect()).State.Pid;
    const fromContainer = async (address: string) => (await run(['nsenter', '-t', String(pid), '-n', 'ping', '-6', '-n', '-c', '1', '-W', '2', address])).code === 0;
    expect(await fromContainer(leases[0]!.address)).toBe(true);
    expect(await fromContainer(addresses[1]!)).toBe(reachesOthers);
    expect(await fromContainer(lab.addresses.orchTransit)).toBe(egress);
  });
});
