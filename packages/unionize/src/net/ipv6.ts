import { isIPv6 } from 'node:net';
import { expandIpv6 } from '@unionize/protocol/ipv6';

/**
 * IPv6 helpers for comparing what we asked for with what the kernel reports:
 * /proc/net/if_inet6 and /proc/net/ipv6_route print addresses as 32 hex
 * digits without colons (proc(5)), so requests are expanded to that form
 * (protocol's expandIpv6, which the hook's nftables table uses too).
 */

export { expandIpv6 };

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
