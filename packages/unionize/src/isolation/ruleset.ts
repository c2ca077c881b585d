import type { Egress } from '../config.js';
import { expandIpv6 } from '../net/ipv6.js';

/**
 * The nftables ruleset of isolation, as text for `nft -f -`: a pure function
 * of what should be allowed, so what reaches the kernel is what the unit
 * tests read. Every address is rewritten to eight full hex groups and every
 * interface name is checked: nothing taken from a request reaches nft as it
 * was written.
 *
 * One table, `bridge unionize`, replaced whole in one transaction (nft
 * applies a file atomically: `table X` makes sure it exists, `delete table X`
 * drops it with everything in it, then it is defined anew). It filters at the
 * containers' own ports on the container bridge, so it holds wherever the
 * router is: on this host (a packet routed to a container leaves through the
 * bridge's output hook), or on another host of the same segment (it arrives
 * through the bridge's forward hook).
 *
 * - Between two container ports: nothing.
 * - To a container: from its own device (the pairs); neighbour discovery,
 *   router advertisements and DHCPv6 answers; the gateway's echo reply; and
 *   the egress setting, from the same addresses containers may reach.
 * - From a container: to its own device; neighbour discovery, router
 *   solicitations, DHCPv6 to the server; an echo request to the gateway (the
 *   attach's announcement); then the egress setting, never to a device or
 *   container known on this host.
 */

export const TABLE = 'unionize';

export interface IsolationRules {
  egress: Egress;
  /** The containers' default gateway (`[network] gateway`): they may ping it. */
  gateway: string;
  /** (device address, container address) pairs allowed to talk both ways. */
  pairs: ReadonlyArray<{ device: string; container: string }>;
  /** Host ends of the containers' veths on the bridge. */
  ports: readonly string[];
}

/** Linux interface names: what `ip link` takes, without quotes or spaces. */
const INTERFACE = /^[A-Za-z0-9_.-]{1,15}$/;

function interfaceName(name: string): string {
  if (!INTERFACE.test(name)) throw new Error(`not an interface name: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** `fd00:3::1` → `fd00:0003:0000:0000:0000:0000:0000:0001`; throws on anything else. */
export function nftAddress(address: string): string {
  return expandIpv6(address).match(/.{4}/g)!.join(':');
}

/** `2001:db8::/32` → full groups and the length; throws on anything but IPV6/LEN. */
export function nftPrefix(prefix: string): string {
  const slash = prefix.indexOf('/');
  const length = Number(prefix.slice(slash + 1));
  if (slash < 0 || !/^[0-9]{1,3}$/.test(prefix.slice(slash + 1)) || length > 128) throw new Error(`not IPV6/PREFIXLEN: ${prefix}`);
  return `${nftAddress(prefix.slice(0, slash))}/${length}`;
}

const elements = (items: readonly string[]) => (items.length === 0 ? [] : [`    elements = { ${items.join(', ')} }`]);

/** Drop the table (isolation off, `[isolation] mode = open`). */
export function openRuleset(): string {
  return [`table bridge ${TABLE}`, `delete table bridge ${TABLE}`, ''].join('\n');
}

/** What the link needs whoever the container is: neighbour discovery, MLD, router solicitation and advertisement, DHCPv6. */
const TO_CONTAINER_LINK = [
  'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, mld-listener-query } accept',
  'udp sport 547 udp dport 546 accept',
];
const FROM_CONTAINER_LINK = [
  'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld-listener-report, mld2-listener-report } accept',
  'udp sport 546 udp dport 547 accept',
];

export function buildRuleset(rules: IsolationRules): string {
  const gateway = nftAddress(rules.gateway);
  const pairs = [...new Set(rules.pairs.map((p) => `${nftAddress(p.device)} . ${nftAddress(p.container)}`))].sort();
  const devices = [...new Set(rules.pairs.map((p) => nftAddress(p.device)))].sort();
  const containers = [...new Set(rules.pairs.map((p) => nftAddress(p.container)))].sort();
  const ports = [...new Set(rules.ports.map(interfaceName))].sort();
  const egress = rules.egress;
  const prefixes = egress.kind === 'prefixes' ? [...new Set(egress.prefixes.map(nftPrefix))].sort() : [];

  // Egress is both ways (the bridge keeps no connection state): what containers may reach may reach them,
  // except a device or a container known here.
  const strangers = 'ip6 daddr != @device_addresses ip6 daddr != @container_addresses';
  const strangersIn = 'ip6 saddr != @device_addresses ip6 saddr != @container_addresses';
  const [egressOut, egressIn] =
    egress.kind === 'any' ? [[`${strangers} accept`], [`${strangersIn} accept`]]
    : egress.kind === 'prefixes' && prefixes.length > 0
      ? [[`${strangers} ip6 daddr @egress_prefixes accept`], [`${strangersIn} ip6 saddr @egress_prefixes accept`]]
      : [[], []];
  const body = (lines: readonly string[]) => lines.map((l) => `    ${l}`);
  // A hook chain for each way a frame reaches a port (forward: from another port; output: from this host, routed
  // or its own) or leaves one (forward: to another port; input: to this host).
  const hook = (name: string, hookName: string) => [
    `  chain ${name} {`,
    `    type filter hook ${hookName} priority filter; policy accept;`,
    ...(hookName === 'forward' ? ['    iifname @container_ports oifname @container_ports drop'] : []),
    ...(hookName !== 'input' ? ['    oifname @container_ports jump to_container'] : []),
    ...(hookName !== 'output' ? ['    iifname @container_ports jump from_container'] : []),
    '  }',
  ];

  return [
    ...openRuleset().trimEnd().split('\n'),
    `table bridge ${TABLE} {`,
    '  set container_ports {',
    '    type ifname',
    ...elements(ports),
    '  }',
    '  set device_container_pairs {',
    '    type ipv6_addr . ipv6_addr',
    ...elements(pairs),
    '  }',
    '  set device_addresses {',
    '    type ipv6_addr',
    ...elements(devices),
    '  }',
    '  set container_addresses {',
    '    type ipv6_addr',
    ...elements(containers),
    '  }',
    ...(prefixes.length > 0 ? ['  set egress_prefixes {', '    type ipv6_addr', '    flags interval', ...elements(prefixes), '  }'] : []),
    '  chain to_container {',
    ...body([
      'ip6 saddr . ip6 daddr @device_container_pairs accept',
      ...TO_CONTAINER_LINK,
      `ip6 saddr ${gateway} icmpv6 type echo-reply accept`,
      ...egressIn,
      'drop',
    ]),
    '  }',
    '  chain from_container {',
    ...body([
      'ip6 daddr . ip6 saddr @device_container_pairs accept',
      ...FROM_CONTAINER_LINK,
      `ip6 daddr ${gateway} icmpv6 type echo-request accept`,
      ...egressOut,
      'drop',
    ]),
    '  }',
    ...hook('bridged', 'forward'),
    ...hook('from_host', 'output'),
    ...hook('to_host', 'input'),
    '}',
    '',
  ].join('\n');
}
