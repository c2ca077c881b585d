import { isIP, isIPv6 } from 'node:net';
import type { AddressingMode } from '@unionize/protocol';

/**
 * `unionize attach`, with pipework's argument convention so it drops in where
 * a site's scripts call pipework (README of jpetazzo/pipework):
 *
 *   unionize attach BRIDGE [-i IFNAME] [-l HOSTIF] [-a 6] CONTAINER ADDRESS/PREFIX[@GATEWAY] [MAC]
 *   unionize attach BRIDGE [-i IFNAME] [-l HOSTIF] CONTAINER dhcp [MAC]
 *
 * IPv6 only: an IPv4 address or `-a 4` is refused with a line saying so.
 * pipework reads `-i`, `-l` and `-a` in that order right after BRIDGE; any
 * order is taken here. The DHCP forms pipework knows for dhclient
 * (`dhclient`, `dhclient-f`, with `:-6`) mean the same as `dhcp`: unionize
 * always runs `dhclient -6` and keeps it running. unionize's own options
 * (`--docker-socket`, `--state-dir`, `--lease-wait-ms`) may stand anywhere.
 */

export const ATTACH_USAGE = [
  'usage: unionize attach [--docker-socket PATH] BRIDGE [-i IFNAME] [-l HOSTIF] [-a 6] CONTAINER ADDRESS/PREFIX[@GATEWAY] [MAC]',
  '       unionize attach [--docker-socket PATH] [--state-dir DIR] [--lease-wait-ms MS] BRIDGE [-i IFNAME] CONTAINER dhcp [MAC]',
].join('\n');

export const DEFAULT_STATE_DIR = '/run/unionize/dhcp';
export const DEFAULT_LEASE_WAIT_MS = 10_000;

interface Common {
  bridge: string;
  /** Interface name in the container. */
  ifname: string;
  /** Host end's name (`-l`); default derived from the container name. */
  hostVeth: string | undefined;
  /** Container name or id, as given. */
  container: string;
  /** eth1's MAC; default derived from the container's name. */
  mac: string | undefined;
  /** Docker's socket: `--docker-socket`, else a unix:// DOCKER_HOST, else the default (decided by the caller: dockerSocketFor). */
  dockerSocket: string | undefined;
  stateDir: string;
  leaseWaitMs: number;
}

/** How the container is addressed; `& { mode: AddressingMode }`: a mode protocol does not name cannot be made. */
type Addressing = ({ mode: 'static'; address: string; gateway: string | undefined } | { mode: 'dhcp' }) & { mode: AddressingMode };

export type AttachArgs = Common & Addressing;

export type ParsedAttach = { help: true } | { help: false; args: AttachArgs };

/** A usage error: the message is the line to print before the usage. */
export class AttachUsageError extends Error {
  override readonly name = 'AttachUsageError';
}

const fail = (message: string): never => {
  throw new AttachUsageError(message);
};

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function interfaceName(value: string, what: string): string {
  if (!IFNAME.test(value) || value === '.' || value === '..') fail(`${what} ${JSON.stringify(value)} is not a valid interface name`);
  return value;
}

/** Six colon-separated hex bytes, unicast; pipework's `MAC@VLAN` is for Open vSwitch and physical interfaces only. */
function macAddress(value: string): string {
  if (value.includes('@')) fail(`MAC ${value}: VLAN tags (MAC@VID) need Open vSwitch or a physical interface; unionize attaches to a Linux bridge`);
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(value)) fail(`MAC ${JSON.stringify(value)} is not six colon-separated hex bytes`);
  if ((parseInt(value.slice(0, 2), 16) & 1) === 1) fail(`MAC ${value} is a multicast address (the first byte must be even)`);
  return value.toLowerCase();
}

const DHCP_FORMS = /^(dhcp|dhclient|dhclient-f)(:(.*))?$/;

/** ADDRESS/PREFIX[@GATEWAY], `dhcp` and its pipework spellings; IPv4 refused. */
function addressing(value: string): Addressing {
  const dhcp = DHCP_FORMS.exec(value);
  if (dhcp) {
    const options = (dhcp[3] ?? '').trim();
    if (options !== '' && options !== '-6') fail(`${value}: unionize runs dhclient -6 itself; client options other than -6 are not supported`);
    return { mode: 'dhcp' };
  }
  if (/^(udhcpc|dhcpcd)(-f)?(:|$)/.test(value)) fail(`${value}: DHCPv4 clients are not supported; use dhcp (DHCPv6)`);
  if (value === '0/0') fail('0/0 (a link without an address) is not supported; give an IPv6 ADDRESS/PREFIX or dhcp');
  const at = value.indexOf('@');
  const cidr = at < 0 ? value : value.slice(0, at);
  const gateway = at < 0 ? undefined : value.slice(at + 1);
  const slash = cidr.indexOf('/');
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  if (isIP(address) === 4) fail(`${value}: IPv4 is not supported; unionize attach is IPv6 only`);
  if (!isIPv6(address)) fail(`${JSON.stringify(value)} is neither ADDRESS/PREFIX[@GATEWAY] with an IPv6 address nor dhcp`);
  if (slash < 0) fail(`${value}: the address needs a prefix length, e.g. ${address}/64`);
  const prefix = cidr.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > 128) fail(`${value}: prefix length must be 0..128`);
  if (gateway !== undefined) {
    if (isIP(gateway) === 4) fail(`${value}: an IPv4 gateway is not supported; unionize attach is IPv6 only`);
    if (!isIPv6(gateway)) fail(`${value}: gateway ${JSON.stringify(gateway)} is not an IPv6 address`);
  }
  return { mode: 'static', address: `${address.toLowerCase()}/${Number(prefix)}`, gateway: gateway?.toLowerCase() };
}

/** Parse `unionize attach` arguments (those after `attach`). Pure; throws AttachUsageError. */
export function parseAttachArgs(argv: readonly string[]): ParsedAttach {
  const positional: string[] = [];
  const own: { dockerSocket?: string; stateDir?: string; leaseWaitMs?: string } = {};
  let ifname: string | undefined;
  let hostVeth: string | undefined;
  let family: string | undefined;

  const takeValue = (option: string, i: number): string => {
    const value = argv[i + 1];
    if (value === undefined || value === '') fail(`${option} needs a value`);
    return value!;
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const long = /^--(docker-socket|state-dir|lease-wait-ms)(=(.*))?$/.exec(arg);
    if (arg === '-h' || arg === '--help') return { help: true };
    if (long) {
      const value = long[2] === undefined ? takeValue(`--${long[1]}`, i++) : long[3]!;
      if (value === '') fail(`--${long[1]} needs a value`);
      if (long[1] === 'docker-socket') own.dockerSocket = value;
      else if (long[1] === 'state-dir') own.stateDir = value;
      else own.leaseWaitMs = value;
      continue;
    }
    // pipework's options come after BRIDGE and before CONTAINER.
    if ((arg === '-i' || arg === '-l' || arg === '-a') && positional.length === 1) {
      const value = takeValue(arg, i++);
      if (arg === '-i') ifname = interfaceName(value, '-i');
      else if (arg === '-l') hostVeth = interfaceName(value, '-l');
      else family = value;
      continue;
    }
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('-') && arg.length > 1) fail(`unknown option ${arg}`);
    positional.push(arg);
  }

  if (family !== undefined && family !== '6' && family !== 'inet6') {
    fail(family === '4' || family === 'inet' ? '-a 4: IPv4 is not supported; unionize attach is IPv6 only' : `-a ${family}: the address family must be 6`);
  }
  if (positional.length < 3) fail('needs BRIDGE, CONTAINER and ADDRESS/PREFIX[@GATEWAY] or dhcp');
  if (positional.length > 4) fail(`too many arguments: ${positional.slice(4).join(' ')}`);
  const [bridge, container, address, mac] = positional as [string, string, string, string | undefined];
  if (container === '') fail('CONTAINER is empty');

  const stateDir = own.stateDir ?? DEFAULT_STATE_DIR;
  if (!stateDir.startsWith('/')) fail(`--state-dir ${stateDir}: must be an absolute path`);
  const leaseWaitMs = own.leaseWaitMs === undefined ? DEFAULT_LEASE_WAIT_MS : Number(own.leaseWaitMs);
  if (!Number.isInteger(leaseWaitMs) || leaseWaitMs < 0 || leaseWaitMs > 600_000) fail(`--lease-wait-ms ${own.leaseWaitMs}: must be 0..600000`);

  const common: Common = {
    bridge: interfaceName(bridge, 'BRIDGE'),
    ifname: ifname ?? 'eth1',
    hostVeth,
    container,
    mac: mac === undefined ? undefined : macAddress(mac),
    dockerSocket: own.dockerSocket,
    stateDir,
    leaseWaitMs,
  };
  return { help: false, args: { ...common, ...addressing(address) } };
}
