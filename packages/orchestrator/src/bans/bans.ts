import type { Logger } from 'pino';
import { banTargetText, type BanTarget } from '@unionize/protocol';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { BanRecord, ClientRecord } from '../store/types.js';

/** Where a ban reaches the DHCP server: the HostsPinner's ignore entries. */
export interface BanEntries {
  ban(target: BanTarget): void;
  unban(target: BanTarget): void;
}

const keyOf = (target: BanTarget) => `${target.kind} ${target.value}`;

/**
 * Banned devices (orchestratorctl ban MAC|DUID [--for DURATION]): kept in the
 * store (they survive restarts) and here, in memory, since every provisioning
 * asks. A banned device's clients get no container (the life cycle refuses
 * them, `banned: …`), and with pinning on its DHCP server is told to ignore
 * it. A ban with an end stops applying at its end; `expire()` then forgets it
 * and removes its ignore entry.
 */
export class Bans {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #entries: BanEntries | undefined;
  readonly #bans = new Map<string, BanRecord>();
  #timer: NodeJS.Timeout | undefined;

  /** Bans with the ones the store holds. */
  static async open(options: { store: Store; clock: Clock; log: Logger; entries?: BanEntries }): Promise<Bans> {
    return new Bans({ ...options, recorded: await options.store.listBans() });
  }

  /** `recorded`: the bans the store holds (open() reads them). */
  constructor(options: { store: Store; clock: Clock; log: Logger; entries?: BanEntries; recorded: readonly BanRecord[] }) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#entries = options.entries;
    for (const ban of options.recorded) this.#bans.set(keyOf(ban), ban);
  }

  /** The bans in force, oldest first. */
  list(): BanRecord[] {
    return [...this.#bans.values()].filter((ban) => this.#inForce(ban));
  }

  /** Ban a device, or change the end of its ban; `seconds` absent: until unbanned. */
  async add(target: BanTarget, seconds?: number): Promise<BanRecord> {
    const now = this.#clock.now();
    const known = this.#bans.get(keyOf(target));
    const ban: BanRecord = {
      kind: target.kind,
      value: target.value,
      since: known && this.#inForce(known) ? known.since : now.toISOString(),
      until: seconds === undefined ? null : new Date(now.getTime() + seconds * 1000).toISOString(),
    };
    await this.#store.putBan(ban);
    this.#bans.set(keyOf(ban), ban);
    this.#entries?.ban(ban);
    this.#log.warn({ ban: banTargetText(ban), until: ban.until }, 'device banned');
    return ban;
  }

  /** Lift a ban; false when the device was not banned. */
  async remove(target: BanTarget): Promise<boolean> {
    this.#bans.delete(keyOf(target));
    const removed = await this.#store.deleteBan(target);
    this.#entries?.unban(target);
    if (removed) this.#log.warn({ ban: banTargetText(target) }, 'device unbanned');
    return removed;
  }

  /** The ban in force on this client's device (its DUID, or its MAC when the DHCP server reported one). */
  banOf(client: Pick<ClientRecord, 'duid' | 'mac'>): BanRecord | undefined {
    if (this.#bans.size === 0) return undefined;
    const ban = this.#bans.get(keyOf({ kind: 'duid', value: client.duid })) ?? (client.mac ? this.#bans.get(keyOf({ kind: 'mac', value: client.mac })) : undefined);
    return ban && this.#inForce(ban) ? ban : undefined;
  }

  /** Forget the bans that ended, and their ignore entries; returns them. */
  async expire(): Promise<BanRecord[]> {
    const ended = [...this.#bans.values()].filter((ban) => !this.#inForce(ban));
    for (const ban of ended) {
      this.#bans.delete(keyOf(ban));
      await this.#store.deleteBan(ban);
      this.#entries?.unban(ban);
      this.#log.info({ ban: banTargetText(ban), until: ban.until }, 'ban ended');
    }
    return ended;
  }

  /** expire() every `intervalMs`, and once now. */
  start(intervalMs: number): void {
    const expire = (): void => {
      this.expire().catch((error: unknown) => this.#log.error({ err: error }, 'could not end the bans that ran out'));
    };
    expire();
    this.#timer = setInterval(expire, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #inForce(ban: BanRecord): boolean {
    return ban.until === null || Date.parse(ban.until) > this.#clock.now().getTime();
  }
}

/** The reason a banned client is refused, the same for as long as the ban is the same. */
export function banReason(ban: BanRecord): string {
  return `banned: ${ban.kind === 'mac' ? 'MAC' : 'DUID'} ${banTargetText(ban)}${ban.until ? ` until ${ban.until}` : ''}`;
}

/** Whether a ban names this client's device: its DUID, or its MAC when the DHCP server reported one. */
export function covers(target: BanTarget, client: Pick<ClientRecord, 'duid' | 'mac'>): boolean {
  return target.kind === 'duid' ? client.duid === target.value : client.mac === target.value;
}
