import { createHash } from 'node:crypto';
import { expandIpv6, parseCidr } from '../net/ipv6.js';
import type { NetnsState } from './netns-state.js';
import type { Command } from './run-command.js';

/**
 * The native attach as data: which `ip` runs to make, given what the
 * container's namespace and ours already hold. Pure, so every state the
 * daemon can meet is a table row in plan.test.ts.
 */

/** The interface name inside the container. */
export const CONTAINER_IF = 'eth1';

export interface AttachSpec {
  /** Container name: the host veth name is derived from it. */
  name: string;
  /** Host PID of the container's init, taken right before attaching. */
  pid: number;
  /** MAC for eth1. */
  mac: string;
  /** eth1 address with prefix length, e.g. `fd00:3::100/64`. */
  address: string;
  bridge: string;
  gateway: string;
}

export interface Tools {
  ip: string;
  nsenter: string;
}

export const DEFAULT_TOOLS: Tools = { ip: 'ip', nsenter: 'nsenter' };

/** One command, and the failure (stderr) that still counts as done. */
export interface Step {
  what: string;
  command: Command;
  tolerate?: RegExp;
}

function digest(name: string): Buffer {
  return createHash('sha256').update(`veth\0${name}`).digest();
}

/** `vh` + 12 hex digits: 14 characters, under IFNAMSIZ (15), and nothing the caller chose verbatim. */
export function hostVethName(containerName: string): string {
  return `vh${digest(containerName).toString('hex').slice(0, 12)}`;
}

/**
 * Host end MAC, `fe:` + hash. A bridge without a fixed MAC takes the lowest of
 * its ports' MACs; starting at fe keeps a new port from changing it (libvirt
 * does the same for its taps).
 */
export function hostVethMac(containerName: string): string {
  const bytes = digest(containerName).subarray(6, 11);
  return ['fe', ...Array.from(bytes, (b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** eth1 holds the address (with its prefix length) and the default route goes via the gateway on eth1. */
export function isAttachedIn(container: NetnsState, spec: Pick<AttachSpec, 'address' | 'gateway'>): boolean {
  if (!container.links.has(CONTAINER_IF)) return false;
  const cidr = parseCidr(spec.address);
  const address = expandIpv6(cidr.address);
  const gateway = expandIpv6(spec.gateway);
  const hasAddress = container.addresses.some(
    (a) => a.dev === CONTAINER_IF && a.address === address && a.prefixLength === cidr.prefixLength,
  );
  const hasRoute = container.defaultRoutes.some((r) => r.dev === CONTAINER_IF && r.via === gateway);
  return hasAddress && hasRoute;
}

function inContainer(spec: AttachSpec, tools: Tools, args: string[], input?: string): Command {
  const command: Command = { file: tools.nsenter, args: ['-t', String(spec.pid), '-n', tools.ip, ...args] };
  return input === undefined ? command : { ...command, input };
}

/**
 * Steps to bring `spec` about; empty when it already holds. Usually two
 * spawns: one `ip -batch` here (veth pair, peer moved into the container as
 * eth1 with its MAC, host end on the bridge and up) and one `ip -6 -batch`
 * in the container (address without DAD, link up, default route).
 * `replace` keeps the container batch idempotent after a half-done attach.
 */
export function planAttach(container: NetnsState, hostLinks: ReadonlySet<string>, spec: AttachSpec, tools: Tools = DEFAULT_TOOLS): Step[] {
  // Values go into `ip -batch` lines, where a space or newline would start another word or command.
  for (const value of [spec.mac, spec.address, spec.gateway, spec.bridge]) {
    if (!/^[0-9A-Za-z_.:/-]+$/.test(value)) throw new Error(`unsafe value for an ip command: ${JSON.stringify(value)}`);
  }
  if (!Number.isInteger(spec.pid) || spec.pid <= 0) throw new Error(`bad container pid ${spec.pid}`);
  if (isAttachedIn(container, spec)) return [];
  const veth = hostVethName(spec.name);
  const steps: Step[] = [];
  let hasEth1 = container.links.has(CONTAINER_IF);

  if (hasEth1 && !hostLinks.has(veth)) {
    // An eth1 whose host end is not ours: replace it rather than configure a dead link.
    steps.push({ what: `remove stray ${CONTAINER_IF}`, command: inContainer(spec, tools, ['link', 'del', CONTAINER_IF]) });
    hasEth1 = false;
  }
  if (!hasEth1 && hostLinks.has(veth)) {
    // Left from an earlier container of this name: the kernel frees a removed
    // namespace (and its veth) asynchronously, so it may vanish on its own first.
    steps.push({ what: `remove stale ${veth}`, command: { file: tools.ip, args: ['link', 'del', veth] }, tolerate: /Cannot find device/ });
  }

  const host: string[] = [];
  if (!hasEth1) {
    host.push(
      `link add ${veth} address ${hostVethMac(spec.name)} type veth peer name ${CONTAINER_IF} address ${spec.mac} netns ${spec.pid}`,
    );
  }
  host.push(`link set ${veth} master ${spec.bridge} up`);
  steps.push({ what: 'host veth', command: { file: tools.ip, args: ['-batch', '-'], input: `${host.join('\n')}\n` } });

  const container6 = [
    `addr replace ${spec.address} dev ${CONTAINER_IF} nodad`,
    `link set ${CONTAINER_IF} up`,
    `route replace default via ${spec.gateway} dev ${CONTAINER_IF}`,
  ];
  steps.push({ what: 'container eth1', command: inContainer(spec, tools, ['-6', '-batch', '-'], `${container6.join('\n')}\n`) });
  return steps;
}

/** The step to drop the host end after the container is gone (its peer goes with it). */
export function planDetach(name: string, hostLinks: ReadonlySet<string>, tools: Tools = DEFAULT_TOOLS): Step[] {
  const veth = hostVethName(name);
  if (!hostLinks.has(veth)) return [];
  return [{ what: `remove ${veth}`, command: { file: tools.ip, args: ['link', 'del', veth] }, tolerate: /Cannot find device/ }];
}
