import { randomInt } from 'node:crypto';
import { isIPv6 } from 'node:net';

/** Minimal IPv6 arithmetic for the static address pool (RFC 4291 text forms, RFC 5952 output). */

export function ipv6ToBigInt(address: string): bigint {
  if (!isIPv6(address)) throw new Error(`not an IPv6 address: ${address}`);
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(missing).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function bigIntToIpv6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** A /64 prefix and the host offsets handed out from it. */
export class Prefix64 {
  readonly base: bigint;
  constructor(readonly text: string) {
    const [address, length] = text.split('/');
    if (length !== '64' || !address) throw new Error(`not a /64 prefix: ${text}`);
    this.base = (ipv6ToBigInt(address) >> 64n) << 64n;
  }
  addressAt(offset: number): string {
    return bigIntToIpv6(this.base + BigInt(offset));
  }
  /** Offset of an address inside this prefix, or undefined when outside. */
  offsetOf(address: string): number | undefined {
    const value = ipv6ToBigInt(address);
    if (value >> 64n !== this.base >> 64n) return undefined;
    return Number(value - this.base);
  }
}

/** First host offset handed to containers: ::1 is the bridge, the rest below 0x100 is left for the operator. */
export const FIRST_POOL_OFFSET = 0x100;
/**
 * The pool's last offset: 2^52 − 1, so an offset is an exact number and a
 * container's address one of 2^52 (about 4.5 × 10^15) in its /64.
 */
export const LAST_POOL_OFFSET = 2 ** 52 - 1;

/** Where a container's pool offset comes from: randomPoolOffset, or a fixed list in tests. */
export type DrawOffset = () => number;

/**
 * A pool offset drawn at random (crypto) from FIRST_POOL_OFFSET to
 * LAST_POOL_OFFSET: container addresses follow no order a scan could walk.
 */
export const randomPoolOffset: DrawOffset = () => {
  for (;;) {
    // randomInt takes ranges below 2^48: the high 20 bits and the low 32 apart.
    const offset = randomInt(0, 2 ** 20) * 2 ** 32 + randomInt(0, 2 ** 32);
    if (offset >= FIRST_POOL_OFFSET) return offset;
  }
};

/** Offsets in order from FIRST_POOL_OFFSET (::100, ::101, …): for tests that name the addresses they expect. */
export function sequentialPoolOffsets(): DrawOffset {
  let next = FIRST_POOL_OFFSET;
  return () => next++;
}

/** Draws before allocation gives up: 32 collisions in a row mean a pool full beyond any real use (or a test). */
export const MAX_POOL_DRAWS = 32;

/** Up to MAX_POOL_DRAWS offsets from `draw`, each checked to be in the pool (a draw out of range throws). */
export function* poolDraws(draw: DrawOffset): Generator<number> {
  for (let i = 0; i < MAX_POOL_DRAWS; i++) {
    const offset = draw();
    if (!Number.isSafeInteger(offset) || offset < FIRST_POOL_OFFSET || offset > LAST_POOL_OFFSET) {
      throw new Error(`pool offset out of range: ${offset}`);
    }
    yield offset;
  }
}

/** The first drawn offset nobody holds, or undefined after MAX_POOL_DRAWS collisions. */
export function drawFreeOffset(draw: DrawOffset, isHeld: (offset: number) => boolean): number | undefined {
  for (const offset of poolDraws(draw)) if (!isHeld(offset)) return offset;
  return undefined;
}

/** Any IPv6 prefix (ADDRESS/LEN), for matching device addresses. */
export class Prefix {
  private constructor(
    readonly network: bigint,
    readonly length: number,
  ) {}

  static tryParse(text: string): Prefix | undefined {
    const [address, len] = text.split('/');
    const length = Number(len);
    if (!address || !isIPv6(address) || !/^[0-9]{1,3}$/.test(len ?? '') || length > 128) return undefined;
    return new Prefix(Prefix.#mask(ipv6ToBigInt(address), length), length);
  }

  contains(address: string): boolean {
    if (!isIPv6(address)) return false;
    return Prefix.#mask(ipv6ToBigInt(address), this.length) === this.network;
  }

  static #mask(value: bigint, length: number): bigint {
    const host = 128n - BigInt(length);
    return (value >> host) << host;
  }
}

/** An IPv6 address in its one RFC 5952 spelling (the stores index clients by it); null when it is not one (or has a dotted IPv4 tail). */
export function canonicalIpv6(address: string): string | null {
  if (!isIPv6(address) || address.includes('.')) return null;
  return bigIntToIpv6(ipv6ToBigInt(address));
}

/** The first four groups of an IPv6 address (its /64), e.g. `fd00:1:0:0`; null when it is not one. The stores index instances by it (quotas count them per /64). */
export function prefix64Of(address: string): string | null {
  if (!isIPv6(address) || address.includes('.')) return null;
  const [head = '', tail] = address.toLowerCase().split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}
