import { describe, expect, it } from 'vitest';
import { hexToIpv6, parseIfInet6, parseIpv6Route, parseProcNetDev, usableGlobalAddress } from './netns-state.js';

/** /proc/<pid>/net/* captured from a busybox container attached on this kind of machine (fd00:3::100/64 via fd00:3::1). */
const PROC_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth1:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
`;

const PROC_IF_INET6 = `fe80000000000000001122fffe334455 02 40 20 c0     eth1
00000000000000000000000000000001 01 80 10 80       lo
fd000003000000000000000000000100 02 40 00 82     eth1
`;

const PROC_IPV6_ROUTE = `fd000003000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth1
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000003000000000000000000000001 00000400 00000001 00000000 00000003     eth1
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
fd000003000000000000000000000100 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001     eth1
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;

describe('/proc/<pid>/net parsers', () => {
  it('lists interfaces from net/dev', () => {
    expect([...parseProcNetDev(PROC_DEV)]).toEqual(['lo', 'eth1']);
  });

  it('reads addresses with prefix length and flags from if_inet6', () => {
    expect(parseIfInet6(PROC_IF_INET6)).toEqual([
      { address: 'fe80000000000000001122fffe334455', prefixLength: 64, flags: 0xc0, dev: 'eth1' },
      { address: '00000000000000000000000000000001', prefixLength: 128, flags: 0x80, dev: 'lo' },
      { address: 'fd000003000000000000000000000100', prefixLength: 64, flags: 0x82, dev: 'eth1' },
    ]);
  });

  it('keeps only default routes from ipv6_route, not the unreachable one on lo', () => {
    expect(parseIpv6Route(PROC_IPV6_ROUTE)).toEqual([{ via: 'fd000003000000000000000000000001', dev: 'eth1' }]);
  });

  it('reads empty text as nothing', () => {
    expect(parseProcNetDev('').size).toBe(0);
    expect(parseIfInet6('')).toEqual([]);
    expect(parseIpv6Route('\n')).toEqual([]);
  });
});

describe('addresses for the view', () => {
  it('writes proc hex as RFC 5952 text', () => {
    expect(hexToIpv6('fd000003000000000000000000000100')).toBe('fd00:3::100');
    expect(hexToIpv6('fe80000000000000001122fffe334455')).toBe('fe80::11:22ff:fe33:4455');
    expect(() => hexToIpv6('fd00')).toThrow();
  });

  it('finds the usable global address: not link-local, not tentative, not failed', () => {
    const state = (lines: string) => ({ links: new Set(['eth1']), addresses: parseIfInet6(lines), defaultRoutes: [] });
    expect(usableGlobalAddress(state(PROC_IF_INET6), 'eth1')).toBe('fd00:3::100/64');
    expect(usableGlobalAddress(state(PROC_IF_INET6), 'eth2')).toBeNull();
    expect(usableGlobalAddress(state('fd770001000300000000000000001b0a 04 80 00 c0     eth1\n'), 'eth1')).toBeNull();
    expect(usableGlobalAddress(state('fd770001000300000000000000001b0a 04 80 00 88     eth1\n'), 'eth1')).toBeNull();
    expect(usableGlobalAddress(state('fd770001000300000000000000001b0a 04 80 00 82     eth1\n'), 'eth1')).toBe('fd77:1:3::1b0a/128');
  });
});
