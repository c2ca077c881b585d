import { describe, expect, it } from 'vitest';
import type { NetnsState } from './netns-state.js';
import { hostVethMac, hostVethName, isAttachedIn, planAttach, planDetach, type AttachSpec } from './plan.js';
import { DHCP_ADDRESS } from '@unionize/protocol';

const SPEC: AttachSpec = {
  name: 'dev-0123456789ab',
  pid: 4242,
  mac: '02:11:22:33:44:55',
  address: 'fd00:3::100/64',
  bridge: 'br-ctr',
  gateway: 'fd00:3::1',
};
const VETH = hostVethName(SPEC.name);

/** As read from /proc/<pid>/net after a real attach (see netns-state.test.ts). */
const attached: NetnsState = {
  links: new Set(['lo', 'eth1']),
  addresses: [
    { address: 'fe80000000000000001122fffe334455', prefixLength: 64, flags: 0xc0, dev: 'eth1' },
    { address: 'fd000003000000000000000000000100', prefixLength: 64, flags: 0x82, dev: 'eth1' },
  ],
  defaultRoutes: [{ via: 'fd000003000000000000000000000001', dev: 'eth1' }],
};
const fresh: NetnsState = { links: new Set(['lo']), addresses: [], defaultRoutes: [] };
const eth1Bare: NetnsState = { links: new Set(['lo', 'eth1']), addresses: [], defaultRoutes: [] };

const HOST_BATCH = `link add ${VETH} address ${hostVethMac(SPEC.name)} type veth peer name eth1 address 02:11:22:33:44:55 netns 4242\nlink set ${VETH} master br-ctr up\n`;
const CONTAINER_BATCH = 'addr replace fd00:3::100/64 dev eth1 nodad\nlink set eth1 up\nroute replace default via fd00:3::1 dev eth1\n';
const CONTAINER_CMD = { file: 'nsenter', args: ['-t', '4242', '-n', 'ip', '-6', '-batch', '-'], input: CONTAINER_BATCH };

describe('host veth naming', () => {
  it('is vh + 12 hex, stable, within IFNAMSIZ, different per name', () => {
    expect(VETH).toMatch(/^vh[0-9a-f]{12}$/);
    expect(VETH.length).toBeLessThanOrEqual(15);
    expect(hostVethName(SPEC.name)).toBe(VETH);
    expect(hostVethName('dev-0123456789ac')).not.toBe(VETH);
  });

  it('gives the host end a locally administered unicast MAC starting fe', () => {
    expect(hostVethMac(SPEC.name)).toMatch(/^fe(:[0-9a-f]{2}){5}$/);
  });
});

describe('isAttachedIn', () => {
  it('needs the address with its prefix length and the default route on eth1', () => {
    expect(isAttachedIn(attached, SPEC)).toBe(true);
    expect(isAttachedIn(attached, { ...SPEC, address: 'fd00:3::100/80' })).toBe(false);
    expect(isAttachedIn(attached, { ...SPEC, address: 'fd00:3::101/64' })).toBe(false);
    expect(isAttachedIn(attached, { ...SPEC, gateway: 'fd00:3::2' })).toBe(false);
    expect(isAttachedIn({ ...attached, defaultRoutes: [] }, SPEC)).toBe(false);
    expect(isAttachedIn(fresh, SPEC)).toBe(false);
  });
});

describe('planAttach', () => {
  it('does nothing when already attached', () => {
    expect(planAttach(attached, new Set(['lo', 'br-ctr', VETH]), SPEC)).toEqual([]);
  });

  it('uses two spawns for a fresh container: host batch, then container batch', () => {
    const steps = planAttach(fresh, new Set(['lo', 'br-ctr']), SPEC);
    expect(steps.map((s) => s.command)).toEqual([{ file: 'ip', args: ['-batch', '-'], input: HOST_BATCH }, CONTAINER_CMD]);
  });

  it('removes a stale host veth first, tolerating the kernel beating us to it', () => {
    const steps = planAttach(fresh, new Set(['lo', 'br-ctr', VETH]), SPEC);
    expect(steps).toHaveLength(3);
    expect(steps[0]?.command).toEqual({ file: 'ip', args: ['link', 'del', VETH] });
    expect(steps[0]?.tolerate?.test('Cannot find device "vh..."')).toBe(true);
    expect(steps[1]?.command.input).toBe(HOST_BATCH);
  });

  it('finishes a half-done attach without re-creating the veth', () => {
    const steps = planAttach(eth1Bare, new Set(['lo', 'br-ctr', VETH]), SPEC);
    expect(steps.map((s) => s.command)).toEqual([
      { file: 'ip', args: ['-batch', '-'], input: `link set ${VETH} master br-ctr up\n` },
      CONTAINER_CMD,
    ]);
  });

  it('replaces an eth1 whose host end is not ours', () => {
    const steps = planAttach(eth1Bare, new Set(['lo', 'br-ctr']), SPEC);
    expect(steps.map((s) => s.command)).toEqual([
      { file: 'nsenter', args: ['-t', '4242', '-n', 'ip', 'link', 'del', 'eth1'] },
      { file: 'ip', args: ['-batch', '-'], input: HOST_BATCH },
      CONTAINER_CMD,
    ]);
  });

  it('uses configured tool paths', () => {
    const steps = planAttach(fresh, new Set(), SPEC, { ip: '/usr/sbin/ip', nsenter: '/usr/bin/nsenter' });
    expect(steps[0]?.command.file).toBe('/usr/sbin/ip');
    expect(steps[1]?.command.args.slice(0, 4)).toEqual(['-t', '4242', '-n', '/usr/sbin/ip']);
  });

  it.each([
    ['a newline in the MAC', { mac: '02:11:22:33:44:55\nlink del br-ctr' }],
    ['a space in the bridge', { bridge: 'br ctr' }],
    ['a bad pid', { pid: 0 }],
  ])('refuses %s', (_what, override) => {
    expect(() => planAttach(fresh, new Set(), { ...SPEC, ...override })).toThrow();
  });
});

describe('planDetach', () => {
  it('deletes the host veth only when it is there', () => {
    expect(planDetach(SPEC.name, new Set(['lo']))).toEqual([]);
    expect(planDetach(SPEC.name, new Set([VETH])).map((s) => s.command)).toEqual([{ file: 'ip', args: ['link', 'del', VETH] }]);
  });
});

describe('planAttach: DHCP mode and pipework-style options', () => {
  const DHCP: AttachSpec = { ...SPEC, address: DHCP_ADDRESS, gateway: undefined };
  const upNoAddress: NetnsState = {
    links: new Set(['lo', 'eth1']),
    addresses: [{ address: 'fe80000000000000001122fffe334455', prefixLength: 64, flags: 0x80, dev: 'eth1' }],
    defaultRoutes: [],
  };

  it('plumbs the link, turns DAD and SLAAC off and RAs on in the container, then brings it up: three spawns, no address, no route', () => {
    const steps = planAttach(fresh, new Set(['lo', 'br-ctr']), DHCP);
    expect(steps.map((s) => s.command)).toEqual([
      { file: 'ip', args: ['-batch', '-'], input: HOST_BATCH },
      {
        file: 'nsenter',
        args: ['-t', '4242', '-n', 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.eth1.accept_dad=0', 'net.ipv6.conf.eth1.accept_ra=1',
          'net.ipv6.conf.eth1.autoconf=0'],
      },
      { file: 'nsenter', args: ['-t', '4242', '-n', 'ip', 'link', 'set', 'eth1', 'up'] },
    ]);
  });

  it('counts an up eth1 (it has its link-local address) with our host end as attached', () => {
    expect(isAttachedIn(upNoAddress, DHCP)).toBe(true);
    expect(isAttachedIn(eth1Bare, DHCP)).toBe(false);
    expect(planAttach(upNoAddress, new Set(['br-ctr', VETH]), DHCP)).toEqual([]);
    // The host end is missing: eth1 is a stray and is replaced.
    expect(planAttach(upNoAddress, new Set(['br-ctr']), DHCP)[0]?.what).toBe('remove stray eth1');
  });

  it('leaves the default route out without a gateway (unionize attach without @GATEWAY)', () => {
    const steps = planAttach(fresh, new Set(), { ...SPEC, gateway: undefined });
    expect(steps[1]?.command.input).toBe('addr replace fd00:3::100/64 dev eth1 nodad\nlink set eth1 up\n');
    expect(isAttachedIn({ ...attached, defaultRoutes: [] }, { ...SPEC, gateway: undefined })).toBe(true);
  });

  it('uses -i and -l names: another interface gets another host veth; eth1 keeps the old name', () => {
    expect(hostVethName(SPEC.name, 'eth1')).toBe(VETH);
    expect(hostVethName(SPEC.name, 'eth2')).not.toBe(VETH);
    const steps = planAttach(fresh, new Set(), { ...SPEC, ifname: 'eth2', hostVeth: 'hostapp1' });
    expect(steps[0]?.command.input).toMatch(/^link add hostapp1 address fe(:[0-9a-f]{2}){5} type veth peer name eth2 address 02:11:22:33:44:55 netns 4242\n/);
    expect(steps[1]?.command.input).toContain('link set eth2 up');
  });

  it.each([
    ['an interface name that is a path', { ifname: '..' }],
    ['an interface name over 15 characters', { ifname: 'eth1234567890123' }],
    ['a newline in the host veth', { hostVeth: 'vh\nlink del x' }],
  ])('refuses %s', (_what, override) => {
    expect(() => planAttach(fresh, new Set(), { ...SPEC, ...override })).toThrow();
  });
});
