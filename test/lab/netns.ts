import { randomBytes } from 'node:crypto';
import { mustRun, run, sleep } from './process.js';
import type { LabState } from './state.js';
import type { LogFn, Teardown } from './teardown.js';

/**
 * The lab's network: namespaces, bridges and veths, all inside namespaces the
 * lab made, except one management veth end in the root namespace (a ULA on
 * it, no route beyond its own /64, no sysctl touched in the root namespace).
 *
 *   <p>-d<i> eth0 ── dev<i> ┐
 *                        brdev P:1::1/64  <p>-orch  transit P:2::1 ── P:2::2 transit  <p>-dock  brctr P:3::1/64
 *   root <p>-mgmt P:4::2 ── mgmt P:4::1 ┘
 *
 * With a second docker host (buildSecondDockerHost):
 *
 *   <p>-orch transit2 P:5::1 ── P:5::2 transit <p>-dock2 brctr (no address)
 *   <p>-dock brctr ── brlink ═══ brlink ── brctr <p>-dock2: one L2 segment, P:3::/64, gateway P:3::1 on <p>-dock
 */

export interface LabAddresses {
  /** The lab's ULA /48 without the trailing `::`, e.g. `fd3c:12ab:9f00`. */
  prefix: string;
  deviceSubnet: string;
  orchBridge: string;
  deviceRange: { start: string; end: string };
  orchTransit: string;
  dockTransit: string;
  containerSubnet: string;
  dockBridge: string;
  mgmtOrch: string;
  mgmtRoot: string;
  /** The second docker host's transit link (orchestrator end, docker host end). */
  orchTransit2: string;
  dock2Transit: string;
}

export interface LabNames {
  /** Short random name of this lab, the prefix of every namespace. */
  lab: string;
  orch: string;
  dock: string;
  /** The second docker host's namespace (labs with dockerHosts: 2). */
  dock2: string;
  /** The root-namespace end of the management veth. */
  rootLink: string;
  devices: string[];
  deviceBridge: 'brdev';
  containerBridge: 'brctr';
}

export function randomPrefix(): string {
  for (;;) {
    const b = randomBytes(5);
    const groups = [`fd${b.toString('hex', 0, 1)}`, b.toString('hex', 1, 3), b.toString('hex', 3, 5)];
    // The host itself uses fd00::/64: stay out of fd00::/16 altogether.
    if (groups[0] !== 'fd00') return groups.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
  }
}

export function addressesOf(prefix: string): LabAddresses {
  return {
    prefix,
    deviceSubnet: `${prefix}:1::/64`,
    orchBridge: `${prefix}:1::1`,
    deviceRange: { start: `${prefix}:1::1000`, end: `${prefix}:1::1fff` },
    orchTransit: `${prefix}:2::1`,
    dockTransit: `${prefix}:2::2`,
    containerSubnet: `${prefix}:3::/64`,
    dockBridge: `${prefix}:3::1`,
    mgmtOrch: `${prefix}:4::1`,
    mgmtRoot: `${prefix}:4::2`,
    orchTransit2: `${prefix}:5::1`,
    dock2Transit: `${prefix}:5::2`,
  };
}

export function namesOf(lab: string, devices: number): LabNames {
  return {
    lab,
    orch: `${lab}-orch`,
    dock: `${lab}-dock`,
    dock2: `${lab}-dock2`,
    rootLink: `${lab}-mgmt`,
    devices: Array.from({ length: devices }, (_, i) => `${lab}-d${i + 1}`),
    deviceBridge: 'brdev',
    containerBridge: 'brctr',
  };
}

/** A random locally administered unicast MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  // dhclient takes its IAID from the MAC's last four bytes, and writes it into its lease file as a quoted
  // string when all four are printable, without escaping a '"' or '\\' among them: `dhclient -r` then cannot
  // read the file and sends no Release (seen once in CI: IAID "\"0r."). A byte above 0x7e makes it write hex.
  b[2] = b[2]! | 0x80;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

export const ip = (...args: string[]) => mustRun(['ip', ...args]);
export const inNs = (ns: string, argv: readonly string[]) => ['ip', 'netns', 'exec', ns, ...argv];

export async function sysctl(ns: string, settings: Record<string, string>): Promise<void> {
  const pairs = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
  await mustRun(inNs(ns, ['sysctl', '-q', '-w', ...pairs]));
}

interface TopologyContext {
  names: LabNames;
  addr: LabAddresses;
  log: LogFn;
  teardown: Teardown;
  state: LabState;
}

/** Kill what is left inside a namespace (all of it the lab's), then delete it. */
export async function deleteNetns(ns: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const listed = await run(['ip', 'netns', 'pids', ns]);
    if (listed.code !== 0) return; // gone already
    const pids = listed.stdout.split(/\s+/).filter(Boolean).map(Number);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, round === 0 ? 'SIGTERM' : 'SIGKILL');
      } catch {
        /* exited meanwhile */
      }
    }
    await sleep(round === 0 ? 1000 : 200);
  }
  await ip('netns', 'del', ns);
}

async function addNetns(ctx: TopologyContext, ns: string, router: boolean): Promise<void> {
  await ip('netns', 'add', ns);
  ctx.state.add('netns', ns);
  ctx.teardown.add(`netns ${ns}`, async () => {
    await deleteNetns(ns);
    ctx.state.remove('netns', ns);
  });
  await ip('-n', ns, 'link', 'set', 'lo', 'up');
  // No DAD in the lab: every address is ours and unique, and tentative addresses only cost time.
  await sysctl(ns, {
    'net.ipv6.conf.all.accept_dad': '0',
    'net.ipv6.conf.default.accept_dad': '0',
    'net.ipv6.conf.all.forwarding': router ? '1' : '0',
  });
}

async function addBridge(ns: string, name: string, address?: string): Promise<void> {
  // A fixed MAC: a bridge without one takes its lowest port's MAC and changes it
  // when that port goes (a container removed), leaving every neighbour cache
  // behind it pointing at a MAC nobody answers for until it times out.
  await ip('-n', ns, 'link', 'add', name, 'address', randomMac(), 'type', 'bridge', 'forward_delay', '0', 'mcast_snooping', '0');
  if (address) await ip('-n', ns, 'addr', 'add', `${address}/64`, 'dev', name, 'nodad');
  await ip('-n', ns, 'link', 'set', name, 'up');
}

/** Namespaces, bridges, transit and management links, routes. Devices come later. */
export async function buildCore(ctx: TopologyContext): Promise<void> {
  const { names, addr } = ctx;
  await addNetns(ctx, names.orch, true);
  await addNetns(ctx, names.dock, true);
  await addBridge(names.orch, names.deviceBridge, addr.orchBridge);
  await addBridge(names.dock, names.containerBridge, addr.dockBridge);

  await ip('link', 'add', 'transit', 'netns', names.orch, 'type', 'veth', 'peer', 'name', 'transit', 'netns', names.dock);
  await ip('-n', names.orch, 'addr', 'add', `${addr.orchTransit}/64`, 'dev', 'transit', 'nodad');
  await ip('-n', names.dock, 'addr', 'add', `${addr.dockTransit}/64`, 'dev', 'transit', 'nodad');
  await ip('-n', names.orch, 'link', 'set', 'transit', 'up');
  await ip('-n', names.dock, 'link', 'set', 'transit', 'up');
  await ip('-n', names.orch, '-6', 'route', 'add', addr.containerSubnet, 'via', addr.dockTransit);
  await ip('-n', names.dock, '-6', 'route', 'add', addr.deviceSubnet, 'via', addr.orchTransit);

  // The management link: the only thing in the root namespace.
  await ip('link', 'add', names.rootLink, 'type', 'veth', 'peer', 'name', 'mgmt', 'netns', names.orch);
  ctx.state.add('rootLinks', names.rootLink);
  ctx.teardown.add(`link ${names.rootLink}`, async () => {
    const gone = await run(['ip', 'link', 'show', names.rootLink]);
    if (gone.code === 0) await ip('link', 'del', names.rootLink);
    ctx.state.remove('rootLinks', names.rootLink);
  });
  await ip('addr', 'add', `${addr.mgmtRoot}/64`, 'dev', names.rootLink, 'nodad');
  await ip('-n', names.orch, 'addr', 'add', `${addr.mgmtOrch}/64`, 'dev', 'mgmt', 'nodad');
  await ip('link', 'set', names.rootLink, 'up');
  await ip('-n', names.orch, 'link', 'set', 'mgmt', 'up');
}

/** The veth that joins the second docker host's brctr to the first's (both ends are called this). */
export const SEGMENT_LINK = 'brlink';

/**
 * The second docker host: its namespace, a transit link of its own to the
 * orchestrator (P:5::/64), and a brctr without an address joined to the first
 * host's brctr by a veth, so containers on either host share P:3::/64 and its
 * gateway P:3::1 on the first (and its DHCPv6 server in dhcp addressing).
 */
export async function buildSecondDockerHost(ctx: TopologyContext): Promise<void> {
  const { names, addr } = ctx;
  await addNetns(ctx, names.dock2, false);
  await addBridge(names.dock2, names.containerBridge);
  await ip('link', 'add', SEGMENT_LINK, 'netns', names.dock, 'type', 'veth', 'peer', 'name', SEGMENT_LINK, 'netns', names.dock2);
  for (const ns of [names.dock, names.dock2]) await ip('-n', ns, 'link', 'set', SEGMENT_LINK, 'master', names.containerBridge, 'up');

  await ip('link', 'add', 'transit2', 'netns', names.orch, 'type', 'veth', 'peer', 'name', 'transit', 'netns', names.dock2);
  await ip('-n', names.orch, 'addr', 'add', `${addr.orchTransit2}/64`, 'dev', 'transit2', 'nodad');
  await ip('-n', names.dock2, 'addr', 'add', `${addr.dock2Transit}/64`, 'dev', 'transit', 'nodad');
  await ip('-n', names.orch, 'link', 'set', 'transit2', 'up');
  await ip('-n', names.dock2, 'link', 'set', 'transit', 'up');
}

/** Cut (or restore) the second docker host's containers off the shared segment: its end of the joining veth goes down (up). */
export async function setSegmentLink(ns: string, up: boolean): Promise<void> {
  await ip('-n', ns, 'link', 'set', SEGMENT_LINK, up ? 'up' : 'down');
}

/** A device namespace with eth0 (given MAC) plugged into brdev; eth0 stays down until `deviceUp`. */
export async function addDevice(ctx: TopologyContext, index: number, mac: string): Promise<void> {
  const ns = ctx.names.devices[index]!;
  const port = `dev${index + 1}`;
  await addNetns(ctx, ns, false);
  await ip('link', 'add', 'eth0', 'netns', ns, 'address', mac, 'type', 'veth', 'peer', 'name', port, 'netns', ctx.names.orch);
  await sysctl(ns, { 'net.ipv6.conf.eth0.accept_dad': '0', 'net.ipv6.conf.eth0.accept_ra': '1' });
  await ip('-n', ctx.names.orch, 'link', 'set', port, 'master', ctx.names.deviceBridge, 'up');
}

export async function deviceUp(ns: string): Promise<void> {
  await ip('-n', ns, 'link', 'set', 'eth0', 'up');
}
