import { readFile } from 'node:fs/promises';

/**
 * What a network namespace holds, read from /proc/<pid>/net/* (proc(5)):
 * these files show the namespace of that process, so checking a container
 * costs three file reads instead of an `nsenter ip` spawn.
 */
export interface NetnsState {
  /** Interface names. */
  links: Set<string>;
  addresses: Array<{ address: string; prefixLength: number; flags: number; dev: string }>;
  /** Default routes (::/0): gateway as 32 hex digits, and device. */
  defaultRoutes: Array<{ via: string; dev: string }>;
}

/** /proc/net/dev: two header lines, then `name: counters...`. */
export function parseProcNetDev(text: string): Set<string> {
  const links = new Set<string>();
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon > 0) links.add(line.slice(0, colon).trim());
  }
  return links;
}

/** /proc/net/if_inet6: `address ifindex prefixlen scope flags name`, all hex but the name. */
export function parseIfInet6(text: string): NetnsState['addresses'] {
  const out: NetnsState['addresses'] = [];
  for (const line of text.split('\n')) {
    const [address, , prefix, , flags, dev] = line.trim().split(/\s+/);
    if (!address || !prefix || !flags || !dev || !/^[0-9a-f]{32}$/.test(address)) continue;
    out.push({ address, prefixLength: parseInt(prefix, 16), flags: parseInt(flags, 16), dev });
  }
  return out;
}

/** /proc/net/ipv6_route: `dest destlen src srclen nexthop metric refcnt use flags dev`. */
export function parseIpv6Route(text: string): NetnsState['defaultRoutes'] {
  const out: NetnsState['defaultRoutes'] = [];
  for (const line of text.split('\n')) {
    const [dest, destLength, , , nextHop, , , , , dev] = line.trim().split(/\s+/);
    if (!dest || !nextHop || !dev) continue;
    if (/^0{32}$/.test(dest) && destLength === '00' && dev !== 'lo') out.push({ via: nextHop, dev });
  }
  return out;
}

/** if_inet6 and ipv6_route are absent when IPv6 is off in the kernel: read that as empty. */
async function readOptional(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

/** `netDir` is `/proc/<pid>/net`, or `/proc/self/net` for our own namespace. Throws when it is gone. */
export async function readNetnsState(netDir: string): Promise<NetnsState> {
  const [dev, inet6, routes] = await Promise.all([
    readFile(`${netDir}/dev`, 'utf8'),
    readOptional(`${netDir}/if_inet6`),
    readOptional(`${netDir}/ipv6_route`),
  ]);
  return { links: parseProcNetDev(dev), addresses: parseIfInet6(inet6), defaultRoutes: parseIpv6Route(routes) };
}

/** Only the interface names (for our own namespace, where only the host veth matters). */
export async function readLinks(netDir: string): Promise<Set<string>> {
  return parseProcNetDev(await readFile(`${netDir}/dev`, 'utf8'));
}

/** `fd000003000000000000000000000100` → `fd00:3::100` (RFC 5952 text, as the WHATWG URL parser writes it). */
export function hexToIpv6(hex: string): string {
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error(`not 32 hex digits: ${hex}`);
  const groups = hex.match(/.{4}/g)!.join(':');
  return new URL(`http://[${groups}]/`).hostname.slice(1, -1);
}

/** if_inet6 flags (include/uapi/linux/if_addr.h). */
const IFA_F_TENTATIVE = 0x40;
const IFA_F_DADFAILED = 0x08;

/**
 * The first usable global address of `ifname` as `address/prefix` (not
 * link-local, not tentative, not failed DAD), or null: what a DHCP client
 * has put there.
 */
export function usableGlobalAddress(state: NetnsState, ifname: string): string | null {
  const found = state.addresses.find(
    (a) => a.dev === ifname && !a.address.startsWith('fe80') && (a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) === 0,
  );
  return found ? `${hexToIpv6(found.address)}/${found.prefixLength}` : null;
}
