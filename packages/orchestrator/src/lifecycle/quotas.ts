import type { Clock } from '../clock.js';
import { isIPv6 } from 'node:net';
import type { Store } from '../store/store.js';
import type { ClientRecord } from '../store/types.js';

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
  /** Instances of clients with one device MAC (clients without a MAC, e.g. behind a relay, are not counted). */
  maxPerMac: number;
  /** Instances of clients whose device addresses share one /64. */
  maxPerPrefix64: number;
  /** New containers a minute, in all (a token bucket holding a minute's worth). */
  newClientsPerMinute: number;
}

export const DEFAULT_QUOTAS: QuotaLimits = {
  maxInstances: 1000,
  maxPerAgent: 1000,
  maxPerMac: 4,
  maxPerPrefix64: 1000,
  newClientsPerMinute: 120,
};

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
  #tokens: number;
  #refilledAt: number;

  constructor(limits: Partial<QuotaLimits>, clock: Clock) {
    this.#limits = { ...DEFAULT_QUOTAS, ...limits };
    for (const [key, value] of Object.entries(this.#limits)) {
      if (!Number.isInteger(value) || value < 0) throw new Error(`quota ${key} must be a whole number >= 0, got ${value}`);
    }
    this.#clock = clock;
    this.#tokens = this.#limits.newClientsPerMinute;
    this.#refilledAt = clock.now().getTime();
  }

  get limits(): Readonly<QuotaLimits> {
    return this.#limits;
  }

  /** May `client` get a new container on `agent`? Checks every limit, then takes a token. */
  admit(client: ClientRecord, agent: string, store: Store): Admission {
    const l = this.#limits;
    const mac = client.mac;
    const prefix = prefix64Of(client.address);
    let total = 0;
    let onAgent = 0;
    let sameMac = 0;
    let samePrefix = 0;
    const count = (other: { agent: string; mac: string | null; prefix: string | null }) => {
      total++;
      if (other.agent === agent) onAgent++;
      if (mac !== null && other.mac === mac) sameMac++;
      if (prefix !== null && other.prefix === prefix) samePrefix++;
    };
    // One read of every instance with its owner's MAC and address: O(n) but no per-instance query.
    for (const owner of store.listInstanceOwners()) {
      if (owner.clientId === client.id || this.#reserved.has(owner.clientId)) continue;
      count({
        agent: owner.agent,
        mac: owner.mac,
        prefix: l.maxPerPrefix64 > 0 && owner.deviceAddress ? prefix64Of(owner.deviceAddress) : null,
      });
    }
    for (const [id, reservation] of this.#reserved) if (id !== client.id) count(reservation);

    if (l.maxInstances > 0 && total >= l.maxInstances) return refuse(`${total} instances in all, the most allowed (max_instances ${l.maxInstances})`);
    if (l.maxPerAgent > 0 && onAgent >= l.maxPerAgent) return refuse(`${onAgent} instances on agent ${agent} (max_per_agent ${l.maxPerAgent})`);
    if (l.maxPerMac > 0 && sameMac >= l.maxPerMac) return refuse(`${sameMac} instances for MAC ${mac} (max_per_mac ${l.maxPerMac})`);
    if (l.maxPerPrefix64 > 0 && samePrefix >= l.maxPerPrefix64) {
      return refuse(`${samePrefix} instances for devices in ${prefix}::/64 (max_per_prefix64 ${l.maxPerPrefix64})`);
    }
    if (l.newClientsPerMinute > 0 && !this.#takeToken()) {
      return refuse(`more than ${l.newClientsPerMinute} new containers a minute (new_clients_per_minute)`);
    }
    this.#reserved.set(client.id, { agent, mac, prefix });
    return { ok: true, release: () => this.#reserved.delete(client.id) };
  }

  #takeToken(): boolean {
    const now = this.#clock.now().getTime();
    const rate = this.#limits.newClientsPerMinute;
    // A clock stepped back refills nothing (and takes nothing back).
    const elapsed = Math.max(0, now - this.#refilledAt);
    this.#tokens = Math.min(rate, this.#tokens + (elapsed * rate) / 60_000);
    this.#refilledAt = Math.max(this.#refilledAt, now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

function refuse(reason: string): Admission {
  return { ok: false, reason: `quota: ${reason}` };
}

/** The first four groups of an IPv6 address (its /64), e.g. `fd00:1:0:0`; null when it is not one. Cheap: called per instance. */
export function prefix64Of(address: string): string | null {
  if (!isIPv6(address) || address.includes('.')) return null;
  const [head = '', tail] = address.toLowerCase().split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}
