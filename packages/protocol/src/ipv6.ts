import { isIPv6 } from 'node:net';

/**
 * An IPv6 address as 32 hex digits, no colons: the form /proc/net/if_inet6
 * prints (unionize compares with it) and the 128-bit number nftables matches
 * a raw header field as (the hook's source validation table).
 * `fd00:3::1` → `fd000003000000000000000000000001`. Throws on anything but an IPv6 address.
 */
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
