import { describe, expect, it } from 'vitest';
import { buildRuleset, nftAddress, nftPrefix, openRuleset } from './ruleset.js';

const D1 = 'fd01:1::1000';
const D2 = 'fd01:1::1001';
const C1 = 'fd01:3::100';
const C2 = 'fd01:3::101';
const GW = 'fd01:3::1';
const full = (a: string) => nftAddress(a);

const base = {
  gateway: GW, egress: { kind: 'none' } as const, pairs: [{ device: D1, container: C1 }, { device: D2, container: C2 }], ports: ['vh1', 'vh2'],
};

/** The lines of one chain's (or set's) body. */
function block(text: string, kind: 'chain' | 'set', name: string): string[] {
  const start = text.indexOf(`  ${kind} ${name} {`);
  expect(start, `${kind} ${name}`).toBeGreaterThanOrEqual(0);
  const end = text.indexOf('\n  }', start);
  return text.slice(start, end).split('\n').slice(1).map((l) => l.trim());
}
const chain = (text: string, name: string) => block(text, 'chain', name);

const LINK_IN = [
  'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, mld-listener-query } accept',
  'udp sport 547 udp dport 546 accept',
  `ip6 saddr ${full(GW)} icmpv6 type echo-reply accept`,
];
const LINK_OUT = [
  'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld-listener-report, mld2-listener-report } accept',
  'udp sport 546 udp dport 547 accept',
  `ip6 daddr ${full(GW)} icmpv6 type echo-request accept`,
];

describe('isolation ruleset', () => {
  it('writes addresses in full groups, so no request text reaches nft as written', () => {
    expect(nftAddress('FD01:3::100')).toBe('fd01:0003:0000:0000:0000:0000:0000:0100');
    expect(nftAddress('::ffff:192.0.2.1')).toBe('0000:0000:0000:0000:0000:ffff:c000:0201');
    expect(nftPrefix('2000::/3')).toBe('2000:0000:0000:0000:0000:0000:0000:0000/3');
  });

  it.each(['fd01::1 } ; flush ruleset', '10.0.0.1', '', 'fd01::1/64'])('refuses %j as an address', (address) => {
    expect(() => buildRuleset({ ...base, pairs: [{ device: address, container: C1 }] })).toThrow(/not an IPv6 address/);
    expect(() => buildRuleset({ ...base, pairs: [{ device: D1, container: address }] })).toThrow(/not an IPv6 address/);
    expect(() => buildRuleset({ ...base, gateway: address })).toThrow(/not an IPv6 address/);
  });

  it.each(['br ctr', 'x"; flush ruleset', 'a'.repeat(16), ''])('refuses %j as a port name', (name) => {
    expect(() => buildRuleset({ ...base, ports: [name] })).toThrow(/not an interface name/);
  });

  it.each(['2000::/129', '2000::', '2000::/x', '10.0.0.0/8'])('refuses %j as an egress prefix', (prefix) => {
    expect(() => buildRuleset({ ...base, egress: { kind: 'prefixes', prefixes: [prefix] } })).toThrow();
  });

  it('replaces the table whole in one transaction', () => {
    const text = buildRuleset(base);
    expect(openRuleset()).toBe('table bridge unionize\ndelete table bridge unionize\n');
    expect(text.startsWith(openRuleset())).toBe(true);
    expect(text.match(/^table /gm)).toHaveLength(2);
  });

  it('filters at the container ports, whichever way a frame comes (another port, this host) or goes', () => {
    const text = buildRuleset(base);
    expect(block(text, 'set', 'container_ports')).toEqual(['type ifname', 'elements = { "vh1", "vh2" }']);
    expect(chain(text, 'bridged')).toEqual([
      'type filter hook forward priority filter; policy accept;',
      'iifname @container_ports oifname @container_ports drop',
      'oifname @container_ports jump to_container',
      'iifname @container_ports jump from_container',
    ]);
    expect(chain(text, 'from_host')).toEqual(['type filter hook output priority filter; policy accept;', 'oifname @container_ports jump to_container']);
    expect(chain(text, 'to_host')).toEqual(['type filter hook input priority filter; policy accept;', 'iifname @container_ports jump from_container']);
  });

  it('egress none: a device and its own container reach each other; beside that only what the link needs', () => {
    const text = buildRuleset(base);
    expect(block(text, 'set', 'device_container_pairs')).toEqual([
      'type ipv6_addr . ipv6_addr', `elements = { ${full(D1)} . ${full(C1)}, ${full(D2)} . ${full(C2)} }`,
    ]);
    expect(chain(text, 'to_container')).toEqual(['ip6 saddr . ip6 daddr @device_container_pairs accept', ...LINK_IN, 'drop']);
    expect(chain(text, 'from_container')).toEqual(['ip6 daddr . ip6 saddr @device_container_pairs accept', ...LINK_OUT, 'drop']);
  });

  it('the same pair twice is one element; ports are sorted and unique', () => {
    const text = buildRuleset({ ...base, pairs: [...base.pairs, { device: 'FD01:1:0::1000', container: C1 }], ports: ['vh2', 'vh1', 'vh1'] });
    expect(block(text, 'set', 'device_container_pairs')[1]!.split(' . ')).toHaveLength(3);
    expect(block(text, 'set', 'container_ports')[1]).toBe('elements = { "vh1", "vh2" }');
  });

  it('with nothing known, the sets are empty and containers get only what the link needs', () => {
    const text = buildRuleset({ ...base, pairs: [], ports: [] });
    expect(text).not.toContain('elements');
    expect(chain(text, 'to_container')).toEqual(['ip6 saddr . ip6 daddr @device_container_pairs accept', ...LINK_IN, 'drop']);
  });

  it('egress any: both ways with anyone but a device or container known here', () => {
    const text = buildRuleset({ ...base, egress: { kind: 'any' } });
    expect(chain(text, 'from_container')).toEqual([
      'ip6 daddr . ip6 saddr @device_container_pairs accept', ...LINK_OUT,
      'ip6 daddr != @device_addresses ip6 daddr != @container_addresses accept', 'drop',
    ]);
    expect(chain(text, 'to_container')).toEqual([
      'ip6 saddr . ip6 daddr @device_container_pairs accept', ...LINK_IN,
      'ip6 saddr != @device_addresses ip6 saddr != @container_addresses accept', 'drop',
    ]);
    expect(block(text, 'set', 'device_addresses')[1]).toBe(`elements = { ${full(D1)}, ${full(D2)} }`);
    expect(block(text, 'set', 'container_addresses')[1]).toBe(`elements = { ${full(C1)}, ${full(C2)} }`);
  });

  it('egress prefixes: only with them', () => {
    const text = buildRuleset({ ...base, egress: { kind: 'prefixes', prefixes: ['2000::/3'] } });
    expect(block(text, 'set', 'egress_prefixes')).toEqual(['type ipv6_addr', 'flags interval', `elements = { ${nftPrefix('2000::/3')} }`]);
    expect(chain(text, 'from_container')).toContain('ip6 daddr != @device_addresses ip6 daddr != @container_addresses ip6 daddr @egress_prefixes accept');
    expect(chain(text, 'to_container')).toContain('ip6 saddr != @device_addresses ip6 saddr != @container_addresses ip6 saddr @egress_prefixes accept');
  });
});
