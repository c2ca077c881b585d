import { describe, expect, it } from 'vitest';
import { isPortPattern, leasedPairsOfNftJson, savRuleset } from './sav-ruleset.js';

const A = ['fd12:3456:1::1000', '02:00:00:00:00:0a'] as const;
const B = ['fd12:3456:1::1001', '02:00:00:00:00:0b'] as const;

describe('savRuleset', () => {
  it('replaces the whole table in one transaction: the leased pairs, and a check on each device port', () => {
    expect(savRuleset(['dev*', 'eth1'], new Map([B, A]))).toBe(`table bridge unionize_sav
delete table bridge unionize_sav
table bridge unionize_sav {
\tset leased {
\t\ttype ether_addr . ipv6_addr
\t\telements = { 02:00:00:00:00:0a . fd12:3456:1::1000,
\t\t\t02:00:00:00:00:0b . fd12:3456:1::1001 }
\t}
\tset leased_targets {
\t\ttypeof ether saddr . @th,64,128
\t\telements = { 02:00:00:00:00:0a . 0xfd123456000100000000000000001000,
\t\t\t02:00:00:00:00:0b . 0xfd123456000100000000000000001001 }
\t}
\tchain prerouting {
\t\ttype filter hook prerouting priority filter; policy accept;
\t\tiifname "dev*" jump device_port
\t\tiifname "eth1" jump device_port
\t}
\tchain device_port {
\t\tether type != ip6 return
\t\ticmpv6 type nd-neighbor-advert @th,64,16 & 0xffc0 != 0xfe80 ether saddr . @th,64,128 != @leased_targets counter drop
\t\tip6 saddr { ::, fe80::/10 } return
\t\tether saddr . ip6 saddr @leased return
\t\tcounter drop
\t}
}
`);
  });

  it('writes an empty set without elements (nft refuses `elements = { }`): every global source from a device port is dropped', () => {
    const text = savRuleset(['dev*'], new Map());
    expect(text).not.toContain('elements');
    expect(text).toContain('\t\tcounter drop\n');
  });

  it('writes MACs and addresses lower case, as the schemas give them', () => {
    const text = savRuleset(['eth1'], new Map([['FD12::AB', '02:AA:BB:CC:DD:EE']]));
    expect(text).toContain('elements = { 02:aa:bb:cc:dd:ee . fd12::ab }');
    expect(text).toContain('elements = { 02:aa:bb:cc:dd:ee . 0xfd1200000000000000000000000000ab }');
  });

  it.each([
    ['an address with nft syntax in it', new Map([['fd12::1 } ; flush ruleset ; {', A[1]]])],
    ['an IPv4-mapped address', new Map([['::ffff:192.0.2.1', A[1]]])],
    ['not an address', new Map([['leased', A[1]]])],
    ['a MAC with nft syntax in it', new Map([[A[0], '02:00:00:00:00:0a . ::/0']])],
    ['a short MAC', new Map([[A[0], '02:00:00:00:0a']])],
  ])('refuses %s', (_what, leased) => {
    expect(() => savRuleset(['eth1'], leased)).toThrow(/not a MAC|not an IPv6 address/);
  });

  it.each([[[]], [['']], [['eth1" accept']], [['a-name-longer-than-15']], [['*']], [['eth*1']]])('refuses ports %j', (ports) => {
    expect(() => savRuleset(ports, new Map([A]))).toThrow(/port|pattern/);
  });
});

describe('isPortPattern', () => {
  it('takes interface names (at most 15 characters) and name prefixes ending in *', () => {
    expect(['eth1', 'dev*', 'wlan0.5', 'a23456789012345', 'a2345678901234*'].every(isPortPattern)).toBe(true);
    expect(['', '*', 'a234567890123456', 'a23456789012345*', 'eth 1', 'eth"1', 'e*th'].some(isPortPattern)).toBe(false);
  });
});

describe('leasedPairsOfNftJson', () => {
  it('reads the pairs back from `nft -j list set` (as nft 1.0.6 prints them), leaving out what is not a pair', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
        {
          set: {
            family: 'bridge', name: 'leased', table: 'unionize_sav', type: ['ether_addr', 'ipv6_addr'], handle: 2,
            elem: [{ concat: [A[1], A[0]] }, { concat: [B[1], B[0]] }, { concat: ['nonsense', B[0]] }, { concat: [A[1]] }, 'x'],
          },
        },
      ],
    });
    expect(leasedPairsOfNftJson(json)).toEqual(new Map([A, B]));
  });

  it('reads an empty set (no elem) as no pairs, and refuses what is not nft -j output', () => {
    expect(leasedPairsOfNftJson('{"nftables":[{"set":{"name":"leased","type":["ether_addr","ipv6_addr"]}}]}')).toEqual(new Map());
    expect(() => leasedPairsOfNftJson('{"x":1}')).toThrow('not nft -j output');
    expect(() => leasedPairsOfNftJson('nft: error')).toThrow();
  });
});
