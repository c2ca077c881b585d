import { describe, expect, it } from 'vitest';
import { expandIpv6, parseCidr, prefixContains, sameAddress } from './ipv6.js';

describe('expandIpv6', () => {
  it.each([
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['fd00:3::1', 'fd000003000000000000000000000001'],
    ['FD00:3::100', 'fd000003000000000000000000000100'],
    ['fe80::11:22ff:fe33:4455', 'fe80000000000000001122fffe334455'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['1::', '00010000000000000000000000000000'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
  ])('%s', (input, expected) => {
    expect(expandIpv6(input)).toBe(expected);
  });

  it('refuses what is not IPv6', () => {
    expect(() => expandIpv6('192.0.2.1')).toThrow(/not an IPv6/);
    expect(() => expandIpv6('fd00:::1')).toThrow(/not an IPv6/);
  });
});

describe('parseCidr / prefixContains', () => {
  it('parses and checks on-link gateways', () => {
    const cidr = parseCidr('fd00:3::100/64');
    expect(cidr).toEqual({ address: 'fd00:3::100', prefixLength: 64 });
    expect(prefixContains(cidr, 'fd00:3::1')).toBe(true);
    expect(prefixContains(cidr, 'fd00:3:0:1::1')).toBe(false);
    expect(prefixContains(parseCidr('fd00:3::100/128'), 'fd00:3::1')).toBe(false);
    expect(prefixContains(parseCidr('fd00:3::100/0'), '2001:db8::1')).toBe(true);
    expect(prefixContains(parseCidr('fd00:3::100/63'), 'fd00:3:0:1::1')).toBe(true);
  });

  it.each(['fd00::1', 'fd00::1/129', 'fd00::1/x', '10.0.0.1/8'])('refuses %s', (input) => {
    expect(() => parseCidr(input)).toThrow(/IPV6\/PREFIXLEN/);
  });

  it('compares addresses in any spelling', () => {
    expect(sameAddress('fd00:3::1', 'FD00:0003:0:0:0:0:0:1')).toBe(true);
    expect(sameAddress('fd00:3::1', 'fd00:3::2')).toBe(false);
  });
});
