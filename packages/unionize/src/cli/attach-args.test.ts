import { describe, expect, it } from 'vitest';
import { AttachUsageError, DEFAULT_LEASE_WAIT_MS, DEFAULT_STATE_DIR, parseAttachArgs, type AttachArgs } from './attach-args.js';

const split = (line: string) => line.split(' ').filter(Boolean);

const BASE = {
  bridge: 'br1',
  ifname: 'eth1',
  hostVeth: undefined,
  container: 'web1',
  mac: undefined,
  dockerSocket: undefined,
  stateDir: DEFAULT_STATE_DIR,
  leaseWaitMs: DEFAULT_LEASE_WAIT_MS,
};

function args(line: string): AttachArgs {
  const parsed = parseAttachArgs(split(line));
  if (parsed.help) throw new Error('help');
  return parsed.args;
}

function usageError(line: string): string {
  try {
    parseAttachArgs(split(line));
  } catch (error) {
    expect(error).toBeInstanceOf(AttachUsageError);
    return (error as Error).message;
  }
  throw new Error(`accepted: ${line}`);
}

describe('parseAttachArgs: what pipework callers write', () => {
  it.each<[string, string, Partial<AttachArgs>]>([
    ['address and prefix', 'br1 web1 fd00:3::10/64', { mode: 'static', address: 'fd00:3::10/64', gateway: undefined }],
    ['with a gateway', 'br1 web1 fd00:3::10/64@fd00:3::1', { mode: 'static', address: 'fd00:3::10/64', gateway: 'fd00:3::1' }],
    ['a link-local gateway', 'br1 web1 fd00:3::10/64@fe80::1', { mode: 'static', gateway: 'fe80::1' }],
    ['upper case, normalised', 'br1 web1 FD00:3::A/64@FD00:3::1', { address: 'fd00:3::a/64', gateway: 'fd00:3::1' }],
    ['a MAC', 'br1 web1 fd00:3::10/64 02:AA:bb:cc:dd:ee', { mac: '02:aa:bb:cc:dd:ee' }],
    ['-i', 'br1 -i eth2 web1 fd00:3::10/64', { ifname: 'eth2', container: 'web1' }],
    ['-i -l -a 6 in pipework order', 'br1 -i eth2 -l hostapp1 -a 6 web1 fd00:3::10/64', { ifname: 'eth2', hostVeth: 'hostapp1' }],
    ['-a inet6, other order', 'br1 -a inet6 -i eth1 web1 fd00:3::10/64', { ifname: 'eth1' }],
    ['a container id', 'br1 4f2a9c1e0b7d fd00:3::10/64', { container: '4f2a9c1e0b7d' }],
    ['dhcp', 'br1 web1 dhcp', { mode: 'dhcp', mac: undefined }],
    ['dhcp with a MAC', 'br1 -i eth1 web1 dhcp 02:00:00:00:00:01', { mode: 'dhcp', mac: '02:00:00:00:00:01' }],
    ['pipework dhclient:-6', 'br1 web1 dhclient:-6', { mode: 'dhcp' }],
    ['pipework dhclient-f', 'br1 web1 dhclient-f', { mode: 'dhcp' }],
    ['dhcp:-6', 'br1 web1 dhcp:-6', { mode: 'dhcp' }],
    ['--docker-socket before', '--docker-socket /run/d.sock br1 web1 dhcp', { dockerSocket: '/run/d.sock' }],
    ['--docker-socket= after', 'br1 web1 dhcp --docker-socket=/run/d.sock', { dockerSocket: '/run/d.sock' }],
    ['--state-dir and --lease-wait-ms', 'br1 web1 dhcp --state-dir /var/lib/u --lease-wait-ms=0', { stateDir: '/var/lib/u', leaseWaitMs: 0 }],
    ['-- ends the options', 'br1 -- web1 dhcp', { container: 'web1', mode: 'dhcp' }],
  ])('%s', (_what, line, expected) => {
    expect(args(line)).toMatchObject({ ...BASE, ...expected });
  });

  it('asks for help with -h or --help anywhere', () => {
    expect(parseAttachArgs(['-h'])).toEqual({ help: true });
    expect(parseAttachArgs(['br1', '--help'])).toEqual({ help: true });
  });
});

describe('parseAttachArgs: refusals, one line each', () => {
  it.each([
    ['nothing', '', 'needs BRIDGE, CONTAINER and ADDRESS/PREFIX[@GATEWAY] or dhcp'],
    ['no address', 'br1 web1', 'needs BRIDGE, CONTAINER'],
    ['too many', 'br1 web1 dhcp 02:00:00:00:00:01 extra', 'too many arguments: extra'],
    ['an IPv4 address', 'br1 web1 192.168.1.2/24', 'IPv4 is not supported; unionize attach is IPv6 only'],
    ['an IPv4 gateway', 'br1 web1 fd00:3::10/64@10.0.0.1', 'an IPv4 gateway is not supported'],
    ['-a 4', 'br1 -a 4 web1 fd00:3::10/64', '-a 4: IPv4 is not supported'],
    ['-a 5', 'br1 -a 5 web1 fd00:3::10/64', '-a 5: the address family must be 6'],
    ['no prefix length', 'br1 web1 fd00:3::10', 'needs a prefix length, e.g. fd00:3::10/64'],
    ['a prefix over 128', 'br1 web1 fd00:3::10/129', 'prefix length must be 0..128'],
    ['a bad gateway', 'br1 web1 fd00:3::10/64@gw', 'gateway "gw" is not an IPv6 address'],
    ['a word', 'br1 web1 auto', '"auto" is neither ADDRESS/PREFIX[@GATEWAY] with an IPv6 address nor dhcp'],
    ['udhcpc', 'br1 web1 udhcpc', 'DHCPv4 clients are not supported; use dhcp'],
    ['dhclient options', 'br1 web1 dhclient:-4', 'client options other than -6 are not supported'],
    ['0/0', 'br1 web1 0/0', '0/0 (a link without an address) is not supported'],
    ['a VLAN tag', 'br1 web1 dhcp 02:00:00:00:00:01@10', 'VLAN tags (MAC@VID)'],
    ['a bad MAC', 'br1 web1 dhcp 02:00:00:00:00', 'is not six colon-separated hex bytes'],
    ['a multicast MAC', 'br1 web1 dhcp 01:00:5e:00:00:01', 'is a multicast address'],
    ['a long interface name', 'br1 -i eth1234567890123 web1 dhcp', '-i "eth1234567890123" is not a valid interface name'],
    ['a bad bridge', 'br/1 web1 dhcp', 'BRIDGE "br/1" is not a valid interface name'],
    ['-i before BRIDGE', '-i eth1 br1 web1 dhcp', 'unknown option -i'],
    ['-i without a value', 'br1 -i', '-i needs a value'],
    ['an unknown option', 'br1 web1 dhcp --verbose', 'unknown option --verbose'],
    ['a relative state dir', 'br1 web1 dhcp --state-dir run', '--state-dir run: must be an absolute path'],
    ['a bad lease wait', 'br1 web1 dhcp --lease-wait-ms soon', '--lease-wait-ms soon: must be 0..600000'],
  ])('%s', (_what, line, expected) => {
    expect(usageError(line)).toContain(expected);
  });
});
