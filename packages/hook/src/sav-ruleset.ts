import { expandIpv6 } from '@unionize/protocol/ipv6';
import { ipv6Schema, macSchema } from '@unionize/protocol/lease-event';

/**
 * Source address validation on the device network's host: the nftables
 * `bridge` table the flusher keeps ([sav] in hook.ini, sav.ts). Pure text, so
 * the whole table is replaced in one `nft -f -` transaction.
 *
 * Frames that enter a bridge through a device port (`[sav] ports`) and carry
 * IPv6 must come from a source address dnsmasq leased to that frame's source
 * MAC; the link-local range (fe80::/10) and the unspecified address (::) pass,
 * so that a device can still do ND, DAD and solicit a lease before it has one.
 * A neighbour advertisement (from any source, link-local too) for a target
 * that is not link-local must also name an address leased to its sender's
 * MAC, or it could point the router at the wrong device for another's
 * address. Everything else from a device port (IPv4, ARP, VLAN-tagged
 * frames) is left alone: the device network is IPv6, and a tagged frame
 * reaches no IPv6 stack here.
 */
export const SAV_TABLE = 'unionize_sav';
/** The set of (MAC . IPv6 address) pairs dnsmasq has leased. */
export const SAV_SET = 'leased';
/** The same pairs, the address as the 128-bit number a neighbour advertisement's target is matched as. */
export const SAV_TARGET_SET = 'leased_targets';
/** The chain device ports jump to; its last rule counts and drops. */
export const SAV_CHAIN = 'device_port';

/** An interface name (IFNAMSIZ: 15 characters), or a prefix of one followed by `*` (nft's wildcard). */
const PORT = /^(?:[A-Za-z0-9_.-]{1,15}|[A-Za-z0-9_.-]{1,14}\*)$/;

export function isPortPattern(text: string): boolean {
  return PORT.test(text);
}

/** Leased addresses and the MAC each was leased to: address → MAC. */
export type LeasedPairs = ReadonlyMap<string, string>;

/**
 * The whole `bridge unionize_sav` table for `nft -f -`: created if missing,
 * deleted and made anew in the same transaction (atomic: no moment without
 * the filter, none with half a set). Throws on a port pattern, MAC or address
 * that is not one (they come from devices via dnsmasq: nothing reaches nft's
 * parser unchecked).
 */
export function savRuleset(ports: readonly string[], leased: LeasedPairs): string {
  if (ports.length === 0) throw new Error('source validation needs at least one device port');
  for (const port of ports) {
    if (!isPortPattern(port)) throw new Error(`not an interface name or name* pattern: ${JSON.stringify(port)}`);
  }
  const elements: string[] = [];
  const targets: string[] = [];
  for (const [address, mac] of [...leased].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const m = macSchema.safeParse(mac);
    const a = ipv6Schema.safeParse(address);
    if (!m.success) throw new Error(`not a MAC: ${JSON.stringify(mac)}`);
    if (!a.success || a.data.includes('.')) throw new Error(`not an IPv6 address: ${JSON.stringify(address)}`);
    elements.push(`${m.data} . ${a.data}`);
    targets.push(`${m.data} . 0x${expandIpv6(a.data)}`);
  }
  const lines = [
    `table bridge ${SAV_TABLE}`,
    `delete table bridge ${SAV_TABLE}`,
    `table bridge ${SAV_TABLE} {`,
    `\tset ${SAV_SET} {`,
    '\t\ttype ether_addr . ipv6_addr',
    ...(elements.length > 0 ? [`\t\telements = { ${elements.join(',\n\t\t\t')} }`] : []),
    '\t}',
    `\tset ${SAV_TARGET_SET} {`,
    // nft 1.0.6 has no `icmpv6 taddr`: the target is the 128 bits 8 bytes into the ICMPv6 header.
    '\t\ttypeof ether saddr . @th,64,128',
    ...(targets.length > 0 ? [`\t\telements = { ${targets.join(',\n\t\t\t')} }`] : []),
    '\t}',
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority filter; policy accept;',
    ...ports.map((port) => `\t\tiifname "${port}" jump ${SAV_CHAIN}`),
    '\t}',
    `\tchain ${SAV_CHAIN} {`,
    '\t\tether type != ip6 return',
    `\t\ticmpv6 type nd-neighbor-advert @th,64,16 & 0xffc0 != 0xfe80 ether saddr . @th,64,128 != @${SAV_TARGET_SET} counter drop`,
    '\t\tip6 saddr { ::, fe80::/10 } return',
    `\t\tether saddr . ip6 saddr @${SAV_SET} return`,
    '\t\tcounter drop',
    '\t}',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The pairs in `nft -j list set bridge unionize_sav leased` output: what the
 * kernel holds from before a flusher restart. Elements that are not a valid
 * (MAC, address) pair are left out.
 */
export function leasedPairsOfNftJson(json: string): Map<string, string> {
  const pairs = new Map<string, string>();
  const parsed = JSON.parse(json) as { nftables?: unknown };
  if (!Array.isArray(parsed.nftables)) throw new Error('not nft -j output');
  for (const item of parsed.nftables as { set?: { name?: unknown; elem?: unknown } }[]) {
    if (item.set?.name !== SAV_SET || !Array.isArray(item.set.elem)) continue;
    for (const elem of item.set.elem as { concat?: unknown }[]) {
      if (!Array.isArray(elem?.concat) || elem.concat.length !== 2) continue;
      const m = macSchema.safeParse(elem.concat[0]);
      const a = ipv6Schema.safeParse(elem.concat[1]);
      if (m.success && a.success) pairs.set(a.data, m.data);
    }
  }
  return pairs;
}

/** The state file's text: `{"leased":{"<address>":"<mac>",...}}`. */
export function stateOfLeasedPairs(leased: LeasedPairs): string {
  return `${JSON.stringify({ leased: Object.fromEntries([...leased].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) })}\n`;
}

/** The pairs in a state file; those that are not a valid (address, MAC) pair are left out. */
export function leasedPairsOfState(text: string): Map<string, string> {
  const parsed = JSON.parse(text) as { leased?: unknown };
  if (typeof parsed.leased !== 'object' || parsed.leased === null || Array.isArray(parsed.leased)) throw new Error('no "leased" object');
  const pairs = new Map<string, string>();
  for (const [address, mac] of Object.entries(parsed.leased)) {
    const m = macSchema.safeParse(mac);
    const a = ipv6Schema.safeParse(address);
    if (m.success && a.success) pairs.set(a.data, m.data);
  }
  return pairs;
}
