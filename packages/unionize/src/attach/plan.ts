import { createHash } from 'node:crypto';
import { isDhcpAddress } from '@unionize/protocol';
import { expandIpv6, parseCidr } from '../net/ipv6.js';
import type { NetnsState } from './netns-state.js';
import type { Command } from './run-command.js';

/**
 * The native attach as data: which `ip` runs to make, given what the
 * container's namespace and ours already hold. Pure, so every state the
 * daemon can meet is a table row in plan.test.ts.
 */

/** The interface name inside the container, unless the caller names another (`unionize attach -i`). */
export const CONTAINER_IF = 'eth1';

export interface AttachSpec {
  /** Container name: the host veth name is derived from it. */
  name: string;
  /** Host PID of the container's init, taken right before attaching. */
  pid: number;
  /** MAC for eth1. */
  mac: string;
  /** eth1 address with prefix length, e.g. `fd00:3::100/64`; or `dhcp` (link only: a DHCPv6 client does the rest). */
  address: string;
  bridge: string;
  /** Default route via this gateway; none when absent (and never in DHCP mode, where router advertisements give it). */
  gateway?: string | undefined;
  /** Interface name in the container; default eth1. */
  ifname?: string | undefined;
  /** Host end's name; default `hostVethName(name, ifname)`. */
  hostVeth?: string | undefined;
}

export interface Tools {
  ip: string;
  nsenter: string;
  /** procps sysctl, run in the container's namespace (DHCP mode); default `sysctl`. */
  sysctl?: string;
  /** iputils ping, for the announce after attaching; default `ping`. */
  ping?: string;
}

export const DEFAULT_TOOLS: Tools = { ip: 'ip', nsenter: 'nsenter', sysctl: 'sysctl', ping: 'ping' };

/** One command, and the failure (stderr) that still counts as done. */
export interface Step {
  what: string;
  command: Command;
  tolerate?: RegExp;
}

function digest(name: string, ifname: string): Buffer {
  // eth1 keeps the original input, so hosts attached before `-i` existed keep their veth names.
  const input = ifname === CONTAINER_IF ? `veth\0${name}` : `veth\0${name}\0${ifname}`;
  return createHash('sha256').update(input).digest();
}

/** `vh` + 12 hex digits: 14 characters, under IFNAMSIZ (15), and nothing the caller chose verbatim. */
export function hostVethName(containerName: string, ifname = CONTAINER_IF): string {
  return `vh${digest(containerName, ifname).toString('hex').slice(0, 12)}`;
}

/**
 * Host end MAC, `fe:` + hash. A bridge without a fixed MAC takes the lowest of
 * its ports' MACs; starting at fe keeps a new port from changing it (libvirt
 * does the same for its taps).
 */
export function hostVethMac(containerName: string, ifname = CONTAINER_IF): string {
  const bytes = digest(containerName, ifname).subarray(6, 11);
  return ['fe', ...Array.from(bytes, (b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The global address in proc's 32-hex form and its prefix length; throws on a bad CIDR. */
function expandedCidr(address: string): { hex: string; prefixLength: number } {
  const cidr = parseCidr(address);
  return { hex: expandIpv6(cidr.address), prefixLength: cidr.prefixLength };
}

/**
 * Static: the interface holds the address (with its prefix length) and, when a
 * gateway is asked for, the default route goes via it on that interface.
 * DHCP: the interface is up (it has its link-local address), which is all the
 * plumbing there is; the lease is the DHCP client's business.
 */
export function isAttachedIn(container: NetnsState, spec: Pick<AttachSpec, 'address' | 'gateway' | 'ifname'>): boolean {
  const ifname = spec.ifname ?? CONTAINER_IF;
  if (!container.links.has(ifname)) return false;
  const mine = container.addresses.filter((a) => a.dev === ifname);
  if (isDhcpAddress(spec.address)) return mine.some((a) => a.address.startsWith('fe80'));
  const { hex, prefixLength } = expandedCidr(spec.address);
  const hasAddress = mine.some((a) => a.address === hex && a.prefixLength === prefixLength);
  if (spec.gateway === undefined) return hasAddress;
  const gateway = expandIpv6(spec.gateway);
  return hasAddress && container.defaultRoutes.some((r) => r.dev === ifname && r.via === gateway);
}

/** `nsenter -t PID -n PROGRAM ARGS...`: the program runs in the container's network namespace only. */
export function nsenterCommand(pid: number, tools: Tools, program: string, args: readonly string[], input?: string): Command {
  const command: Command = { file: tools.nsenter, args: ['-t', String(pid), '-n', program, ...args] };
  return input === undefined ? command : { ...command, input };
}

/** Values go into `ip -batch` lines and sysctl names, where a space, newline or `=` would change the meaning. */
export function checkSpec(spec: AttachSpec): void {
  const values = [spec.mac, spec.address, spec.bridge, spec.gateway, spec.ifname, spec.hostVeth];
  for (const value of values) {
    if (value !== undefined && !/^[0-9A-Za-z_.:/@-]+$/.test(value)) throw new Error(`unsafe value for an ip command: ${JSON.stringify(value)}`);
  }
  for (const name of [spec.ifname, spec.hostVeth]) {
    // Not `.` or `..` (sysctl paths), at most IFNAMSIZ - 1.
    if (name !== undefined && (name.length > 15 || /^\.\.?$/.test(name) || name.includes('/'))) {
      throw new Error(`bad interface name ${JSON.stringify(name)}`);
    }
  }
  if (!Number.isInteger(spec.pid) || spec.pid <= 0) throw new Error(`bad container pid ${spec.pid}`);
}

/**
 * The sysctls a DHCP-mode interface needs before it goes up, in the container's
 * namespace only: no duplicate address detection (a tentative link-local
 * address cannot send a Solicit; RFC 8415 section 18.2.1 waits for it, the
 * kernel counts `all` as well as the interface, see ip-sysctl.rst accept_dad),
 * router advertisements accepted (DHCPv6 carries no default route; the
 * container's forwarding is 0, so accept_ra = 1 suffices), and no SLAAC
 * address beside the leased one should an RA carry the A flag (autoconf = 0).
 */
export function dhcpSysctls(ifname: string): string[] {
  return [
    'net.ipv6.conf.all.accept_dad=0',
    `net.ipv6.conf.${ifname}.accept_dad=0`,
    `net.ipv6.conf.${ifname}.accept_ra=1`,
    `net.ipv6.conf.${ifname}.autoconf=0`,
  ];
}

/**
 * Steps to bring `spec` about; empty when it already holds. Usually two
 * spawns: one `ip -batch` here (veth pair, peer moved into the container as
 * eth1 with its MAC, host end on the bridge and up) and one `ip -6 -batch`
 * in the container (address without DAD, link up, default route).
 * `replace` keeps the container batch idempotent after a half-done attach.
 * DHCP mode: the same host batch, then the sysctls and `link set up` in the
 * container (three spawns); the address and route come later.
 */
export function planAttach(container: NetnsState, hostLinks: ReadonlySet<string>, spec: AttachSpec, tools: Tools = DEFAULT_TOOLS): Step[] {
  checkSpec(spec);
  const ifname = spec.ifname ?? CONTAINER_IF;
  const veth = spec.hostVeth ?? hostVethName(spec.name, ifname);
  const dhcp = isDhcpAddress(spec.address);
  if (isAttachedIn(container, spec) && (!dhcp || hostLinks.has(veth))) return [];
  const steps: Step[] = [];
  let hasIf = container.links.has(ifname);

  if (hasIf && !hostLinks.has(veth)) {
    // An eth1 whose host end is not ours: replace it rather than configure a dead link.
    steps.push({ what: `remove stray ${ifname}`, command: nsenterCommand(spec.pid, tools, tools.ip, ['link', 'del', ifname]) });
    hasIf = false;
  }
  if (!hasIf && hostLinks.has(veth)) {
    // Left from an earlier container of this name: the kernel frees a removed
    // namespace (and its veth) asynchronously, so it may vanish on its own first.
    steps.push({ what: `remove stale ${veth}`, command: { file: tools.ip, args: ['link', 'del', veth] }, tolerate: /Cannot find device/ });
  }

  const host: string[] = [];
  if (!hasIf) {
    host.push(`link add ${veth} address ${hostVethMac(spec.name, ifname)} type veth peer name ${ifname} address ${spec.mac} netns ${spec.pid}`);
  }
  host.push(`link set ${veth} master ${spec.bridge} up`);
  steps.push({ what: 'host veth', command: { file: tools.ip, args: ['-batch', '-'], input: `${host.join('\n')}\n` } });

  if (dhcp) {
    steps.push({ what: `container ${ifname} sysctls`, command: nsenterCommand(spec.pid, tools, tools.sysctl ?? 'sysctl', ['-q', '-w', ...dhcpSysctls(ifname)]) });
    steps.push({ what: `container ${ifname} up`, command: nsenterCommand(spec.pid, tools, tools.ip, ['link', 'set', ifname, 'up']) });
    return steps;
  }
  const container6 = [`addr replace ${spec.address} dev ${ifname} nodad`, `link set ${ifname} up`];
  if (spec.gateway !== undefined) container6.push(`route replace default via ${spec.gateway} dev ${ifname}`);
  steps.push({ what: `container ${ifname}`, command: nsenterCommand(spec.pid, tools, tools.ip, ['-6', '-batch', '-'], `${container6.join('\n')}\n`) });
  return steps;
}

/** The step to drop the host end after the container is gone (its peer goes with it). */
export function planDetach(name: string, hostLinks: ReadonlySet<string>, tools: Tools = DEFAULT_TOOLS, veth = hostVethName(name)): Step[] {
  if (!hostLinks.has(veth)) return [];
  return [{ what: `remove ${veth}`, command: { file: tools.ip, args: ['link', 'del', veth] }, tolerate: /Cannot find device/ }];
}

/**
 * One echo request from the container to its gateway, sent once eth1 is up:
 * the bridges along the way learn the MAC on its new port at once, and the
 * router its neighbour entry. Without it a silent container (a web server
 * waiting for requests) whose MAC was last seen elsewhere on the segment
 * (moved from another docker host) stays unreachable until the bridges' FDB
 * entries age out (300 s). Needs CAP_NET_RAW (ping's raw socket).
 */
export function announceCommand(pid: number, tools: Tools, ifname: string, gateway: string): Command {
  return nsenterCommand(pid, tools, tools.ping ?? 'ping', ['-6', '-n', '-q', '-c', '1', '-W', '1', '-I', ifname, gateway]);
}
