import { compareText } from '@unionize/protocol';
import { AsyncStore } from './async-store.js';
import type { SyncStore } from './sync-store.js';
import type { BanTarget } from '@unionize/protocol';
import { CLIENT_STATES, DEFAULT_MEMORY_EVENTS, deviceKeyOf, type AgentRecord, type BanRecord, type AppliedMark, type ClientRecord, type ClientState, type EventRecord, type InstanceFilter, type InstanceRecord, type KeptRecord, type ServerRecord, type ShareRecord, type TransitionRecord } from './types.js';
import { FIRST_POOL_OFFSET, LAST_POOL_OFFSET, Prefix64, canonicalIpv6, drawFreeOffset, prefix64Of, randomPoolOffset, type DrawOffset } from './ipv6.js';

/** Transitions kept per client: the last two or so provisioning cycles (the SQLite store keeps all). */
export const MEMORY_TRANSITIONS = 10;

/**
 * The store with `[sql] enabled = false`: all state in this process, gone at
 * exit. What it keeps is bounded: the journal holds the newest `maxEvents`
 * events (applied ones beyond it are forgotten, oldest first, in batches of a
 * tenth), and each client its last MEMORY_TRANSITIONS transitions.
 *
 * Records are kept as shallow copies (every field is a string, number or
 * null, so a shallow copy is a whole one) and handed out as copies. Counts
 * that placement, quotas and metrics ask for on every event or scrape are
 * kept as the records change, and client ids are kept sorted for paging: no
 * call made per event reads every client or instance.
 */
export class SyncMemoryStore implements SyncStore {
  readonly #events = new Map<string, EventRecord>();
  /** The journal in arrival order (oldest first): the same records as #events. */
  #journal: EventRecord[] = [];
  /** Journal length at which applied events are next pruned back to #maxEvents. */
  #pruneAt: number;
  readonly #maxEvents: number;

  readonly #clients = new Map<string, ClientRecord>();
  /** Client ids in order, for paging: kept sorted as clients come. */
  readonly #sortedIds: string[] = [];
  readonly #perState = Object.fromEntries(CLIENT_STATES.map((s) => [s, 0])) as Record<ClientState, number>;
  readonly #transitions = new Map<string, TransitionRecord[]>();
  readonly #servers = new Map<string, ServerRecord>();
  readonly #agents = new Map<string, AgentRecord>();
  /** Bans by `kind value`. */
  readonly #bans = new Map<string, BanRecord>();
  readonly #kept = new Map<string, KeptRecord>();
  readonly #shares = new Map<string, ShareRecord>();

  readonly #instances = new Map<string, InstanceRecord>();
  /** Instances by agent, and by their client's device MAC and /64: what quotas and placement count. */
  readonly #perAgent = new Map<string, number>();
  readonly #perMac = new Map<string, number>();
  readonly #perPrefix = new Map<string, number>();
  /** Client ids by leased address (canonicalIpv6), for whoami. */
  readonly #byAddress = new Map<string, Set<string>>();
  /** `server duid` → the id of its one client, or the ids of its several (most devices have one IA_NA). */
  readonly #byDevice = new Map<string, string | string[]>();
  /** Instance MAC → client id; built at the first lookup (dhcp addressing only), then kept. */
  #byMac: Map<string, string> | undefined;

  /** Names with few values (servers, agents, images, profiles), kept once each instead of once per record. */
  readonly #names = new Map<string, string>();

  /** The static pool; none in dhcp addressing, where containers lease their own. */
  readonly #prefix: Prefix64 | undefined;
  readonly #allocated = new Map<string, number>();
  readonly #holders = new Map<number, string>();
  readonly #drawOffset: DrawOffset;

  constructor(options: { prefix?: string; maxEvents?: number; drawOffset?: DrawOffset }) {
    this.#prefix = options.prefix === undefined ? undefined : new Prefix64(options.prefix);
    this.#drawOffset = options.drawOffset ?? randomPoolOffset;
    const maxEvents = options.maxEvents ?? DEFAULT_MEMORY_EVENTS;
    if (!Number.isInteger(maxEvents) || maxEvents < 1) throw new Error(`maxEvents must be a positive integer, got ${maxEvents}`);
    this.#maxEvents = maxEvents;
    this.#pruneAt = this.#nextPruneAt();
  }

  transaction<T>(fn: () => T): T {
    return fn();
  }

  appendEvent(record: EventRecord): { duplicate: boolean } {
    if (this.#events.has(record.eventId)) return { duplicate: true };
    const kept = { ...record, event: { ...record.event } };
    this.#events.set(record.eventId, kept);
    this.#journal.push(kept);
    if (this.#journal.length > this.#pruneAt) {
      this.pruneEvents(this.#maxEvents);
      this.#pruneAt = this.#nextPruneAt();
    }
    return { duplicate: false };
  }

  writeJournal(events: readonly EventRecord[], applied: readonly AppliedMark[]): { duplicate: boolean }[] {
    const results = events.map((record) => this.appendEvent(record));
    for (const mark of applied) this.markEventApplied(mark);
    return results;
  }

  syncJournal(): Promise<void> {
    return Promise.resolve();
  }

  markEventApplied({ eventId, appliedAt, outcome, outcomeKind }: AppliedMark): void {
    const record = this.#events.get(eventId);
    if (record) Object.assign(record, { appliedAt, outcome, outcomeKind });
  }

  unappliedEvents(): EventRecord[] {
    return this.#journal.filter((e) => e.appliedAt === null).map(copyEvent);
  }

  recentEvents(limit: number): EventRecord[] {
    const out: EventRecord[] = [];
    for (let i = this.#journal.length - 1; i >= 0 && out.length < limit; i--) out.push(copyEvent(this.#journal[i]!));
    return out;
  }

  pruneEvents(keep: number): number {
    const journal = this.#journal;
    const cutoff = journal.length - keep;
    if (cutoff <= 0) return 0;
    const kept: EventRecord[] = [];
    for (let i = 0; i < journal.length; i++) {
      const record = journal[i]!;
      if (i < cutoff && record.appliedAt !== null) this.#events.delete(record.eventId);
      else kept.push(record);
    }
    this.#journal = kept;
    return journal.length - kept.length;
  }

  getClient(id: string): ClientRecord | undefined {
    const client = this.#clients.get(id);
    return client && { ...client };
  }
  putClient(client: ClientRecord): void {
    const old = this.#clients.get(client.id);
    if (old) this.#perState[old.state]--;
    else {
      this.#sortedIds.splice(this.#firstIdAfter(client.id), 0, client.id);
      this.#indexDevice(client);
    }
    this.#perState[client.state]++;
    if (this.#instances.has(client.id)) {
      if (!old || old.mac !== client.mac) {
        bump(this.#perMac, old && macKey(old.mac), -1);
        bump(this.#perMac, macKey(client.mac), 1);
      }
      if (old?.address !== client.address) {
        bump(this.#perPrefix, old && prefix64Of(old.address), -1);
        bump(this.#perPrefix, prefix64Of(client.address), 1);
      }
    }
    if (old?.address !== client.address) {
      if (old) this.#unindexAddress(old.address, old.id);
      const key = canonicalIpv6(client.address);
      if (key !== null) {
        const ids = this.#byAddress.get(key);
        if (ids) ids.add(client.id);
        else this.#byAddress.set(key, new Set([client.id]));
      }
    }
    this.#clients.set(client.id, { ...client, server: this.#name(client.server), profile: client.profile === null ? null : this.#name(client.profile) });
  }
  #unindexAddress(address: string, id: string): void {
    const key = canonicalIpv6(address);
    const ids = key === null ? undefined : this.#byAddress.get(key);
    if (!ids) return;
    ids.delete(id);
    if (ids.size === 0) this.#byAddress.delete(key!);
  }
  deviceClients(server: string, duid: string): ClientRecord[] {
    const ids = this.#byDevice.get(deviceKeyOf({ server, duid }));
    if (ids === undefined) return [];
    return (typeof ids === 'string' ? [ids] : ids).map((id) => ({ ...this.#clients.get(id)! }));
  }
  #indexDevice(client: ClientRecord): void {
    const key = deviceKeyOf(client);
    const ids = this.#byDevice.get(key);
    this.#byDevice.set(key, ids === undefined ? client.id : typeof ids === 'string' ? [ids, client.id] : [...ids, client.id]);
  }
  #unindexDevice(client: ClientRecord): void {
    const key = deviceKeyOf(client);
    const ids = this.#byDevice.get(key);
    const rest = (typeof ids === 'string' ? [ids] : ids ?? []).filter((id) => id !== client.id);
    if (rest.length === 0) this.#byDevice.delete(key);
    else this.#byDevice.set(key, rest.length === 1 ? rest[0]! : rest);
  }
  clientsWithAddress(address: string): ClientRecord[] {
    const key = canonicalIpv6(address);
    const ids = key === null ? undefined : this.#byAddress.get(key);
    return ids ? [...ids].map((id) => ({ ...this.#clients.get(id)! })) : [];
  }
  listClientsPage(after: string | null, limit: number): ClientRecord[] {
    const start = after === null ? 0 : this.#firstIdAfter(after);
    return this.#sortedIds.slice(start, start + limit).map((id) => ({ ...this.#clients.get(id)! }));
  }
  listClients(): ClientRecord[] {
    return [...this.#clients.values()].map((c) => ({ ...c }));
  }
  clientsPerState(): Record<ClientState, number> {
    return { ...this.#perState };
  }
  addTransition(transition: TransitionRecord): void {
    // A new array of the exact length each time (concat; at most MEMORY_TRANSITIONS to
    // copy): push or spread would give most clients' one or two transitions 17 slots.
    const list = this.#transitions.get(transition.clientId) ?? [];
    const kept = list.length >= MEMORY_TRANSITIONS ? list.slice(list.length - MEMORY_TRANSITIONS + 1) : list;
    this.#transitions.set(transition.clientId, kept.concat([{ ...transition }]));
  }
  listTransitions(clientId: string, limit: number): TransitionRecord[] {
    return (this.#transitions.get(clientId) ?? []).slice(-limit).reverse().map((t) => ({ ...t }));
  }

  pruneGoneClients(before: string, limit: number): number {
    const gone = new Set<string>();
    for (const client of this.#clients.values()) {
      if (gone.size >= limit) break;
      if (client.state === 'gone' && client.updatedAt < before) gone.add(client.id);
    }
    if (gone.size === 0) return 0;
    for (const id of gone) {
      const client = this.#clients.get(id)!;
      this.deleteInstance(id);
      this.releaseAddress(id);
      this.#unindexAddress(client.address, id);
      this.#unindexDevice(client);
      this.#perState[client.state]--;
      this.#transitions.delete(id);
      this.#clients.delete(id);
    }
    // One pass over the ordered ids, not one splice per client.
    let kept = 0;
    for (const id of this.#sortedIds) if (!gone.has(id)) this.#sortedIds[kept++] = id;
    this.#sortedIds.length = kept;
    return gone.size;
  }

  touchServer(server: ServerRecord): void {
    const known = this.#servers.get(server.name);
    if (known) Object.assign(known, { role: server.role, lastSeen: server.lastSeen });
    else this.#servers.set(server.name, { ...server });
  }
  listServers(): ServerRecord[] {
    return [...this.#servers.values()].map((s) => ({ ...s }));
  }

  putAgent(agent: AgentRecord): void {
    this.#agents.set(agent.name, { ...agent });
  }
  listAgents(): AgentRecord[] {
    return [...this.#agents.values()].map((a) => ({ ...a }));
  }

  findInstanceByMac(mac: string): InstanceRecord | undefined {
    if (!this.#byMac) {
      this.#byMac = new Map();
      for (const instance of this.#instances.values()) this.#byMac.set(instance.mac, instance.clientId);
    }
    const id = this.#byMac.get(mac);
    const instance = id === undefined ? undefined : this.#instances.get(id);
    return instance?.mac === mac ? { ...instance } : undefined;
  }

  getInstance(clientId: string): InstanceRecord | undefined {
    const instance = this.#instances.get(clientId);
    return instance && { ...instance };
  }
  putInstance(instance: InstanceRecord): void {
    const old = this.#instances.get(instance.clientId);
    if (old) {
      if (old.agent !== instance.agent) {
        bump(this.#perAgent, old.agent, -1);
        bump(this.#perAgent, instance.agent, 1);
      }
      if (old.mac !== instance.mac && this.#byMac?.get(old.mac) === old.clientId) this.#byMac.delete(old.mac);
    } else {
      bump(this.#perAgent, instance.agent, 1);
      this.#countOwner(instance.clientId, 1);
    }
    this.#byMac?.set(instance.mac, instance.clientId);
    this.#instances.set(instance.clientId, { ...instance, agent: this.#name(instance.agent), image: this.#name(instance.image) });
  }
  deleteInstance(clientId: string): void {
    const old = this.#instances.get(clientId);
    if (!old) return;
    bump(this.#perAgent, old.agent, -1);
    this.#countOwner(clientId, -1);
    if (this.#byMac?.get(old.mac) === clientId) this.#byMac.delete(old.mac);
    this.#instances.delete(clientId);
  }
  listInstances(): InstanceRecord[] {
    return [...this.#instances.values()].map((i) => ({ ...i }));
  }
  countInstances(filter?: InstanceFilter): number {
    if (!filter) return this.#instances.size;
    if ('agent' in filter) return this.#perAgent.get(filter.agent) ?? 0;
    if ('mac' in filter) return this.#perMac.get(macKey(filter.mac)) ?? 0;
    return this.#perPrefix.get(filter.prefix64) ?? 0;
  }
  instancesPerAgent(): Map<string, number> {
    return new Map(this.#perAgent);
  }

  allocateAddress(clientId: string): string | undefined {
    if (!this.#prefix) return undefined;
    let offset = this.#allocated.get(clientId);
    if (offset === undefined) {
      offset = drawFreeOffset(this.#drawOffset, (o) => this.#holders.has(o));
      if (offset === undefined) return undefined;
      this.#hold(clientId, offset);
    }
    return this.#prefix.addressAt(offset);
  }

  claimAddress(clientId: string, address: string): boolean {
    if (!this.#prefix) return true;
    const offset = this.#prefix.offsetOf(address);
    if (offset === undefined || offset < FIRST_POOL_OFFSET || offset > LAST_POOL_OFFSET) return false;
    const holder = this.#holders.get(offset);
    if (holder !== undefined) return holder === clientId;
    this.releaseAddress(clientId);
    this.#hold(clientId, offset);
    return true;
  }

  releaseAddress(clientId: string): void {
    const offset = this.#allocated.get(clientId);
    if (offset === undefined) return;
    this.#allocated.delete(clientId);
    this.#holders.delete(offset);
  }

  putBan(ban: BanRecord): void {
    this.#bans.set(`${ban.kind} ${ban.value}`, { ...ban });
  }
  deleteBan(target: BanTarget): boolean {
    return this.#bans.delete(`${target.kind} ${target.value}`);
  }
  listBans(): BanRecord[] {
    return [...this.#bans.values()].sort((a, b) => compareText(a.since, b.since) || compareText(a.value, b.value)).map((b) => ({ ...b }));
  }

  /** Rows here are the objects put: none can be unreadable. */
  quarantinedRows(): number {
    return 0;
  }

  putKept(kept: KeptRecord): void {
    this.#kept.set(kept.image, { ...kept });
  }

  deleteKept(image: string): void {
    this.#kept.delete(image);
  }

  listKept(clientId?: string): KeptRecord[] {
    return [...this.#kept.values()]
      .filter((k) => clientId === undefined || k.clientId === clientId)
      .sort((a, b) => compareText(a.createdAt, b.createdAt) || compareText(a.image, b.image))
      .map((k) => ({ ...k }));
  }

  putShare(share: ShareRecord): void {
    this.#shares.set(share.tokenHash, { ...share });
  }

  getShare(tokenHash: string): ShareRecord | undefined {
    const share = this.#shares.get(tokenHash);
    return share && { ...share };
  }

  useShare(tokenHash: string, at: string): boolean {
    const share = this.#shares.get(tokenHash);
    if (!share || share.usedAt !== null) return false;
    share.usedAt = at;
    return true;
  }

  deleteShare(tokenHash: string): void {
    this.#shares.delete(tokenHash);
  }

  listShares(): ShareRecord[] {
    return [...this.#shares.values()].sort((a, b) => compareText(a.createdAt, b.createdAt) || compareText(a.tokenHash, b.tokenHash)).map((s) => ({ ...s }));
  }

  close(): void {}

  #hold(clientId: string, offset: number): void {
    this.#allocated.set(clientId, offset);
    this.#holders.set(offset, clientId);
  }

  /** The one copy of `name` (up to 1,000 distinct names; beyond, each as given). */
  #name(name: string): string {
    const known = this.#names.get(name);
    if (known !== undefined) return known;
    if (this.#names.size < 1000) this.#names.set(name, name);
    return name;
  }

  /** Count (or uncount) an instance under its client's device MAC and /64. */
  #countOwner(clientId: string, delta: 1 | -1): void {
    const client = this.#clients.get(clientId);
    if (!client) return;
    bump(this.#perMac, macKey(client.mac), delta);
    bump(this.#perPrefix, prefix64Of(client.address), delta);
  }

  /** Index in #sortedIds of the first id greater than `id` (binary search). */
  #firstIdAfter(id: string): number {
    const ids = this.#sortedIds;
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ids[mid]! <= id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #nextPruneAt(): number {
    return Math.max(this.#journal.length, this.#maxEvents) + Math.ceil(this.#maxEvents / 10);
  }
}

function copyEvent(record: EventRecord): EventRecord {
  return { ...record, event: { ...record.event } };
}

/** Add `delta` to a count; a count that reaches 0 goes, so the maps only hold what is in use. */
/** The #perMac key of a MAC; clients without one share '' (never a MAC: they are validated at the edge). */
function macKey(mac: string | null): string {
  return mac ?? '';
}

function bump(counts: Map<string, number>, key: string | null | undefined, delta: number): void {
  if (key === null || key === undefined) return;
  const n = (counts.get(key) ?? 0) + delta;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

/** The memory store as a Store (see SyncMemoryStore). */
export class MemoryStore extends AsyncStore {
  constructor(options: { prefix?: string; maxEvents?: number; drawOffset?: DrawOffset }) {
    super(new SyncMemoryStore(options));
  }
}
