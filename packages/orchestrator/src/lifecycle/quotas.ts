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

  /**
   * May `client` get a new container on `agent`? Checks every limit, then
   * takes a token. The store counts its instances by index; reservations (at
   * most the dispatcher's concurrency) are added, and the instances of the
   * client itself and of reserved clients are not counted twice.
   */
  admit(client: ClientRecord, agent: string, store: Store): Admission {
    const l = this.#limits;
    const mac = client.mac;
    const prefix = prefix64Of(client.address);
    let total = l.maxInstances > 0 ? store.countInstances() : 0;
    let onAgent = l.maxPerAgent > 0 ? store.countInstances({ agent }) : 0;
    let sameMac = l.maxPerMac > 0 && mac !== null ? store.countInstances({ mac }) : 0;
    let samePrefix = l.maxPerPrefix64 > 0 && prefix !== null ? store.countInstances({ prefix64: prefix }) : 0;
    const count = (other: { agent: string; mac: string | null; prefix: string | null }, n: 1 | -1) => {
      total += n;
      if (other.agent === agent) onAgent += n;
      if (mac !== null && other.mac === mac) sameMac += n;
      if (prefix !== null && other.prefix === prefix) samePrefix += n;
    };
    // Counted as the store counts them: by the stored client's MAC and address.
    for (const id of new Set([client.id, ...this.#reserved.keys()])) {
      const instance = store.getInstance(id);
      if (!instance) continue;
      const owner = store.getClient(id);
      count({ agent: instance.agent, mac: owner?.mac ?? null, prefix: owner ? prefix64Of(owner.address) : null }, -1);
    }
    for (const [id, reservation] of this.#reserved) if (id !== client.id) count(reservation, 1);

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
