import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { findTool } from './lab/prereqs.js';
import { waitFor } from './lab/process.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * Issue 16, point 1: a device cannot borrow another's identity. With [sav]
 * on, the flusher keeps the nftables table `bridge unionize_sav` in the
 * device bridge's namespace (the lab's orch) from the lease events; device A
 * puts device B's leased address on its own interface and sends from it: the
 * bridge drops those frames, so neither B's container nor the router sees
 * them, while A's own address and B's keep working; nor can A's neighbour
 * advertisement (from its link-local address) for B's address move B's
 * address to A's MAC at the router.
 *
 * What reaches where is read from ICMPv6 counters (Icmp6InEchos in
 * /proc/net/snmp6) of B's container and of the router (the orch namespace),
 * and from the table's own drop counter: states, not waits.
 */
// nft reads the table; python3 crafts a neighbour advertisement (scripts/setup.sh installs both).
const missing = ['nft', 'python3'].filter((tool) => !findTool(tool));
if (process.env.CI === 'true' && missing.length > 0) throw new Error(`CI=true and ${missing.join(', ')} missing (Debian packages nftables, python3; scripts/setup.sh)`);
const skipReason = labSkipReason({ daemons: true, hook: true }) ?? (missing.length > 0 ? `${missing.join(', ')} missing (Debian packages nftables, python3)` : null);
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

/**
 * python3 ADDRESS MAC: one unsolicited neighbour advertisement (override set)
 * from eth0's link-local address to all nodes: "ADDRESS is at MAC".
 */
const SEND_NA = `
import socket, struct, sys
target, mac = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
na = struct.pack('!BBHI', 136, 0, 0, 0x20000000) + socket.inet_pton(socket.AF_INET6, target) + bytes([2, 1]) + bytes.fromhex(mac.replace(':', ''))
s.sendto(na, ('ff02::1', 0, 0, socket.if_nametoindex('eth0')))
`;

describe.skipIf(skipReason)('source address validation on the device bridge', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 2, sourceValidation: true, hookFlushSeconds: 1 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  /** Echo requests a network namespace has received (`argv` runs a command inside it). */
  async function inEchos(inside: (argv: string[]) => Promise<{ code: number; stdout: string; stderr: string }>): Promise<number> {
    const result = await inside(['cat', '/proc/net/snmp6']);
    expect(result.code, result.stderr).toBe(0);
    const match = /^Icmp6InEchos\s+(\d+)$/m.exec(result.stdout);
    if (!match) throw new Error('no Icmp6InEchos in /proc/net/snmp6');
    return Number(match[1]);
  }

  /** Packets dropped by the table's last rule (a source not leased to the sender), or its first (a neighbour advertisement for another's address). */
  async function dropped(rule: 'source' | 'advert' = 'source'): Promise<number> {
    const result = await lab.run(lab.names.orch, ['nft', 'list', 'chain', 'bridge', 'unionize_sav', 'device_port']);
    expect(result.code, result.stderr).toBe(0);
    const counters = [...result.stdout.matchAll(/counter packets (\d+) bytes \d+ drop/g)].map((m) => Number(m[1]));
    if (counters.length !== 2) throw new Error(`not two drop counters in:\n${result.stdout}`);
    return rule === 'source' ? counters[1]! : counters[0]!;
  }

  /** The MAC the router (the orch namespace) has for `address` on the device bridge. */
  async function routerNeighbour(address: string): Promise<string | undefined> {
    const result = await lab.run(lab.names.orch, ['ip', '-j', '-6', 'neigh', 'show', address, 'dev', 'brdev']);
    return (JSON.parse(result.stdout || '[]') as { lladdr?: string }[])[0]?.lladdr;
  }

  it("device A with device B's address reaches neither B's container nor the router; both devices' own addresses still work", async () => {
    const [a, b] = await Promise.all([lab.lease(1), lab.lease(2)]);
    const [clientA, clientB] = await Promise.all([a, b].map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready')));
    const containerA = clientA!.instance!.address.split('/')[0]!;
    const containerB = clientB!.instance!.address.split('/')[0]!;
    const router = lab.addresses.orchBridge;

    // Ready means delivered, and each call is applied to the table before its delivery: both pairs are in.
    const table = await lab.run(lab.names.orch, ['nft', 'list', 'set', 'bridge', 'unionize_sav', 'leased']);
    expect(table.stdout).toContain(`${lab.devices[0]!.mac} . ${a.address}`);
    expect(table.stdout).toContain(`${lab.devices[1]!.mac} . ${b.address}`);

    // Each device's own address works: its container's page, and the router.
    expect((await lab.httpGet(1, `http://[${containerA}]/`)).body).toContain(a.duid);
    expect((await lab.httpGet(2, `http://[${containerB}]/`)).body).toContain(b.duid);

    const pidB = String((await lab.docker.getContainer(clientB!.instance!.containerName).inspect()).State.Pid);
    const inContainerB = (argv: string[]) => lab.run(lab.names.dock, ['nsenter', '-t', pidB, '-n', ...argv]);
    const inRouter = (argv: string[]) => lab.run(lab.names.orch, argv);
    const ping = (device: number, source: string, to: string) =>
      lab.run(lab.devices[device - 1]!, ['ping', '-6', '-n', '-c', '3', '-i', '0.2', '-W', '1', '-I', source, to]);

    // The counters count: B's own echo requests reach its container, A's the router.
    const before = { container: await inEchos(inContainerB), router: await inEchos(inRouter), dropped: await dropped() };
    expect((await ping(2, b.address, containerB)).code).toBe(0);
    expect((await ping(1, a.address, router)).code).toBe(0);
    expect(await inEchos(inContainerB)).toBe(before.container + 3);
    expect(await inEchos(inRouter)).toBe(before.router + 3);
    expect(await dropped()).toBe(before.dropped);

    // A takes B's address on its own interface and sends from it.
    const added = await lab.run(lab.devices[0]!, ['ip', '-6', 'addr', 'add', `${b.address}/128`, 'dev', 'eth0', 'nodad']);
    expect(added.code, added.stderr).toBe(0);
    const middle = { container: await inEchos(inContainerB), router: await inEchos(inRouter), dropped: await dropped() };
    expect((await ping(1, b.address, containerB)).code).not.toBe(0);
    expect((await ping(1, b.address, router)).code).not.toBe(0);
    // All six echo requests were dropped at the bridge (and maybe A's neighbour advertisements for B's address, from it too).
    await waitFor('the six spoofed echo requests dropped', async () => ((await dropped()) >= middle.dropped + 6 ? true : undefined));
    expect(await inEchos(inContainerB)).toBe(middle.container);
    expect(await inEchos(inRouter)).toBe(middle.router);

    // A's own address and B's still work.
    expect((await ping(1, a.address, router)).code).toBe(0);
    expect((await ping(2, b.address, containerB)).code).toBe(0);
    expect(await inEchos(inRouter)).toBe(middle.router + 3);
    expect(await inEchos(inContainerB)).toBe(middle.container + 3);
    const page = await lab.run(lab.devices[0]!, ['curl', '-sS', '-g', '--noproxy', '*', '--max-time', '5', '--interface', a.address, `http://[${containerA}]/`]);
    expect(page.stdout).toContain(a.duid);
  });

  it("device A's neighbour advertisement for B's address (from A's link-local) does not move B's address to A at the router", async () => {
    const pairs = await leasedPairs();
    const [a] = pairs.filter((p) => p.mac === lab.devices[0]!.mac);
    const [b] = pairs.filter((p) => p.mac === lab.devices[1]!.mac);
    expect(a && b, JSON.stringify(pairs)).toBeTruthy();
    // The router knows B's address at B's MAC.
    expect((await lab.run(lab.devices[1]!, ['ping', '-6', '-n', '-c', '1', '-W', '2', '-I', b!.address, lab.addresses.orchBridge])).code).toBe(0);
    expect(await routerNeighbour(b!.address)).toBe(lab.devices[1]!.mac);

    const before = await dropped('advert');
    const sent = await lab.run(lab.devices[0]!, ['python3', '-c', SEND_NA, b!.address, lab.devices[0]!.mac]);
    expect(sent.code, sent.stderr).toBe(0);
    await waitFor("A's advertisement dropped", async () => ((await dropped('advert')) > before ? true : undefined));
    expect(await dropped('advert')).toBe(before + 1);
    expect(await routerNeighbour(b!.address)).toBe(lab.devices[1]!.mac);
    // (A's advertisements for its own address pass: the router resolved it for the pings of the test before.)
  });

  it('keeps the pairs across a restart of the flusher, a table lost (a reboot) and a restart of dnsmasq, and lets a released lease through no more', async () => {
    // Device 1 still has device 2's address beside its own: take the ones each leased (the table says which MAC).
    const leased = await leasedPairs();
    const [a] = leased.filter((p) => p.mac === lab.devices[0]!.mac);
    const [b] = leased.filter((p) => p.mac === lab.devices[1]!.mac);
    expect(a && b, JSON.stringify(leased)).toBeTruthy();
    const gone = await lab.run(lab.devices[0]!, ['ip', '-6', 'addr', 'del', `${b!.address}/128`, 'dev', 'eth0']);
    expect(gone.code, gone.stderr).toBe(0);

    // The flusher restarts on its own (no dnsmasq replay): it takes the pairs back from the kernel.
    await lab.daemons.hookFlush!.restart();
    expect(await leasedPairs()).toEqual(leased);
    // As after a reboot: no table in the kernel when the flusher starts; it starts from its state file.
    await lab.daemons.hookFlush!.stop();
    const deleted = await lab.run(lab.names.orch, ['nft', 'delete', 'table', 'bridge', 'unionize_sav']);
    expect(deleted.code, deleted.stderr).toBe(0);
    await lab.daemons.hookFlush!.start();
    expect(await leasedPairs()).toEqual(leased);
    // dnsmasq restarts and replays every lease as `old`, without their MACs: the pairs stay.
    await lab.daemons.dnsmasq.restart();
    const duidA = (await lab.lease(1)).duid;
    await lab.release(1);
    // Events are applied in order: when the release has reached the orchestrator, the replay and the release are in the table.
    await api.waitForClient(duidA, (c) => c.state === 'gone');
    expect(await leasedPairs()).toEqual([b]);
    expect((await lab.run(lab.devices[1]!, ['ping', '-6', '-n', '-c', '1', '-W', '2', '-I', b!.address, lab.addresses.orchBridge])).code).toBe(0);
  });

  /** The (MAC, address) pairs in the table's set, sorted. */
  async function leasedPairs(): Promise<{ mac: string; address: string }[]> {
    const result = await lab.run(lab.names.orch, ['nft', '-j', 'list', 'set', 'bridge', 'unionize_sav', 'leased']);
    expect(result.code, result.stderr).toBe(0);
    const sets = (JSON.parse(result.stdout) as { nftables: { set?: { elem?: { concat: [string, string] }[] } }[] }).nftables;
    const elems = sets.flatMap((item) => item.set?.elem ?? []);
    return elems.map((e) => ({ mac: e.concat[0], address: e.concat[1] })).sort((x, y) => x.address.localeCompare(y.address));
  }
});
