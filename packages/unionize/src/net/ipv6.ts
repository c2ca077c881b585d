import { isIPv6 } from 'node:net';

/**
 * IPv6 helpers for comparing what we asked for with what the kernel reports:
 * /proc/net/if_inet6 and /proc/net/ipv6_route print addresses as 32 hex
 * digits without colons (proc(5)), so requests are expanded to that form.
 */

/** `fd00:3::1` → `fd000003000000000000000000000001`. Throws on anything but an IPv6 address. */
export function expandIpv6(address: string): string {
  if (!isIPv6(address)) throw new Error(`not an IPv6 address: ${address}`);
  let text = address.toLowerCase();
  // An embedded IPv4 tail (`::ffff:192.0.2.1`) is two more groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailGroups];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

export interface Cidr {
  /** Address as written in the request. */
  address: string;
  prefixLength: number;
}

/** `fd00:3::100/64` → `{ address, prefixLength: 64 }`. Throws when it is not IPV6/LEN. */
export function parseCidr(cidr: string): Cidr {
  const slash = cidr.indexOf('/');
  const address = cidr.slice(0, slash);
  const prefixLength = Number(cidr.slice(slash + 1));
  if (slash < 0 || !isIPv6(address) || !Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 128) {
    throw new Error(`not IPV6/PREFIXLEN: ${cidr}`);
  }
  return { address, prefixLength };
}

/** True when `address` lies inside the prefix of `cidr` (the on-link test for a gateway). */
export function prefixContains(cidr: Cidr, address: string): boolean {
  if (cidr.prefixLength === 0) return true;
  const shift = BigInt(128 - cidr.prefixLength);
  return BigInt(`0x${expandIpv6(cidr.address)}`) >> shift === BigInt(`0x${expandIpv6(address)}`) >> shift;
}

export function sameAddress(a: string, b: string): boolean {
  return expandIpv6(a) === expandIpv6(b);
}
