import type { Clock } from '../clock.js';
import { prefix64Of } from '../store/ipv6.js';
import type { Store } from '../store/store.js';
import type { ClientRecord } from '../store/types.js';

export { prefix64Of };

/**
 * Limits on new containers, so that one device cycling DUIDs (each a new
 * client) cannot exhaust a docker host. Every count is of instances (running
 * or being made); 0 turns a limit off.
 */
export interface QuotaLimits {
  /** Instances in all. */
  maxInstances: number;
  /** Instances on one agent. */
  maxPerAgent: number;
  /** Instances of clients with one device MAC. */
  maxPerMac: number;
  /** Instances of all clients whose MAC the DHCP server did not report (e.g. behind a relay), together. */
  maxWithoutMac: number;
  /** Instances of clients whose device addresses share one /64. */
  maxPerPrefix64: number;
  /** New containers a minute, in all (a token bucket holding a minute's worth). */
  newClientsPerMinute: number;
  /** New containers a minute for one device MAC (the clients without one share a bucket). */
  newClientsPerMacPerMinute: number;
}

export const DEFAULT_QUOTAS: QuotaLimits = {
  maxInstances: 1000,
  maxPerAgent: 1000,
  maxPerMac: 2,
  maxWithoutMac: 8,
  maxPerPrefix64: 1000,
  newClientsPerMinute: 120,
  newClientsPerMacPerMinute: 4,
};

/** Per-MAC rate buckets kept at most; beyond, the full ones (idle a minute or more) are dropped first. */
const MAX_MAC_BUCKETS = 10_000;

/** A token bucket holding a minute's worth of `perMinute`, refilled by the time that passed. */
class MinuteBucket {
  #tokens: number;
  #refilledAt: number;
  constructor(
    readonly perMinute: number,
    now: number,
  ) {
    this.#tokens = perMinute;
    this.#refilledAt = now;
  }
  #refill(now: number): void {
    // A clock stepped back refills nothing (and takes nothing back).
    const elapsed = Math.max(0, now - this.#refilledAt);
    this.#tokens = Math.min(this.perMinute, this.#tokens + (elapsed * this.perMinute) / 60_000);
    this.#refilledAt = Math.max(this.#refilledAt, now);
  }
  /** Whether a token is there now (taking none). */
  has(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= 1;
  }
  take(now: number): void {
    this.#refill(now);
    this.#tokens -= 1;
  }
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.perMinute;
  }
}

export type Admission = { ok: true; release: () => void } | { ok: false; reason: string };

/**
 * Decides whether a client may get a new container. Admissions hold a
 * reservation until `release()` (when its instance is recorded, or its
 * provisioning failed), so clients provisioned in parallel cannot together
 * overshoot a limit.
 */
export class Quotas {
  readonly #limits: QuotaLimits;
  readonly #clock: Clock;
  /** clientId -> what it counts against while its provisioning runs. */
  readonly #reserved = new Map<string, { agent: string; mac: string | null; prefix: string | null }>();
  readonly #all: MinuteBucket;
  /** Rate buckets by device MAC; '' for the clients without one. */
  readonly #perMac = new Map<string, MinuteBucket>();

  constructor(limits: Partial<QuotaLimits>, clock: Clock) {
    this.#limits = { ...DEFAULT_QUOTAS, ...limits };
    for (const [key, value] of Object.entries(this.#limits)) {
      if (!Number.isInteger(value) || value < 0) throw new Error(`quota ${key} must be a whole number >= 0, got ${value}`);
    }
    this.#clock = clock;
    this.#all = new MinuteBucket(this.#limits.newClientsPerMinute, clock.now().getTime());
  }

  get limits(): Readonly<QuotaLimits> {
    return this.#limits;
  }

  /**
   * May `client` get a new container on `agent`? Checks every limit, then
   * takes a token. The store counts its instances by index; reservations (at
   * most the dispatcher's concurrency) are added, and the instances of the
   * client itself and of reserved clients are not counted twice.
   */
  async admit(client: ClientRecord, agent: string, store: Store): Promise<Admission> {
    const l = this.#limits;
    const mac = client.mac;
    const prefix = prefix64Of(client.address);
    let total = l.maxInstances > 0 ? await store.countInstances() : 0;
    let onAgent = l.maxPerAgent > 0 ? await store.countInstances({ agent }) : 0;
    const macLimit = mac === null ? l.maxWithoutMac : l.maxPerMac;
    let sameMac = macLimit > 0 ? await store.countInstances({ mac }) : 0;
    let samePrefix = l.maxPerPrefix64 > 0 && prefix !== null ? await store.countInstances({ prefix64: prefix }) : 0;
    const count = (other: { agent: string; mac: string | null; prefix: string | null }, n: 1 | -1) => {
      total += n;
      if (other.agent === agent) onAgent += n;
      if (other.mac === mac) sameMac += n;
      if (prefix !== null && other.prefix === prefix) samePrefix += n;
    };
    // Counted as the store counts them: by the stored client's MAC and address.
    for (const id of new Set([client.id, ...this.#reserved.keys()])) {
      const instance = await store.getInstance(id);
      if (!instance) continue;
      const owner = await store.getClient(id);
      count({ agent: instance.agent, mac: owner?.mac ?? null, prefix: owner ? prefix64Of(owner.address) : null }, -1);
    }
    for (const [id, reservation] of this.#reserved) if (id !== client.id) count(reservation, 1);

    if (l.maxInstances > 0 && total >= l.maxInstances) return refuse(`${total} instances in all, the most allowed (max_instances ${l.maxInstances})`);
    if (l.maxPerAgent > 0 && onAgent >= l.maxPerAgent) return refuse(`${onAgent} instances on agent ${agent} (max_per_agent ${l.maxPerAgent})`);
    if (mac !== null && l.maxPerMac > 0 && sameMac >= l.maxPerMac) return refuse(`${sameMac} instances for MAC ${mac} (max_per_mac ${l.maxPerMac})`);
    if (mac === null && l.maxWithoutMac > 0 && sameMac >= l.maxWithoutMac) {
      return refuse(`${sameMac} instances for devices whose MAC is not known (max_without_mac ${l.maxWithoutMac})`);
    }
    if (l.maxPerPrefix64 > 0 && samePrefix >= l.maxPerPrefix64) {
      return refuse(`${samePrefix} instances for devices in ${prefix}::/64 (max_per_prefix64 ${l.maxPerPrefix64})`);
    }
    const now = this.#clock.now().getTime();
    const macBucket = l.newClientsPerMacPerMinute > 0 ? this.#macBucket(mac ?? '', now) : undefined;
    if (macBucket && !macBucket.has(now)) {
      const who = mac === null ? 'devices whose MAC is not known' : `MAC ${mac}`;
      return refuse(`more than ${l.newClientsPerMacPerMinute} new containers a minute for ${who} (new_clients_per_mac_per_minute)`);
    }
    if (l.newClientsPerMinute > 0 && !this.#all.has(now)) {
      return refuse(`more than ${l.newClientsPerMinute} new containers a minute (new_clients_per_minute)`);
    }
    // Both checked before either is taken: a refusal costs the other bucket nothing.
    macBucket?.take(now);
    if (l.newClientsPerMinute > 0) this.#all.take(now);
    this.#reserved.set(client.id, { agent, mac, prefix });
    return { ok: true, release: () => this.#reserved.delete(client.id) };
  }

  #macBucket(key: string, now: number): MinuteBucket {
    let bucket = this.#perMac.get(key);
    if (bucket) return bucket;
    if (this.#perMac.size >= MAX_MAC_BUCKETS) {
      // A full bucket is the same as none: drop those; if none is full, the oldest.
      for (const [k, b] of this.#perMac) if (b.full(now)) this.#perMac.delete(k);
      if (this.#perMac.size >= MAX_MAC_BUCKETS) this.#perMac.delete(this.#perMac.keys().next().value!);
    }
    bucket = new MinuteBucket(this.#limits.newClientsPerMacPerMinute, now);
    this.#perMac.set(key, bucket);
    return bucket;
  }
}

function refuse(reason: string): Admission {
  return { ok: false, reason: `quota: ${reason}` };
}
