import { compareText } from '@unionize/protocol';
import { AsyncStore } from './async-store.js';
import type { SyncStore } from './sync-store.js';
import type { BanTarget } from '@unionize/protocol';
import { CLIENT_STATES, DEFAULT_MEMORY_EVENTS, deviceKeyOf, isRetired, type AgentRecord, type BanRecord, type AppliedMark, type ClientListFilter, type ClientRecord, type ClientState, type EventRecord, type InstanceFilter, type InstanceRecord, type KeptRecord, type ServerRecord, type ShareRecord, type TransitionRecord } from './types.js';
import { IdIndex } from './id-index.js';
import { packRetired, retiredAt, unpackRetired } from './retired-pack.js';
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
 *
 * Retired clients (isRetired: gone, wanting nothing, kept as history) are
 * packed with their transitions into one string each (retired-pack.ts),
 * about a fifth of their size as objects, and are in no index but the
 * ordered ids: a client that comes back is unpacked when it is next put.
 */
export class SyncMemoryStore implements SyncStore {
  #events = new Map<string, EventRecord>();
  /** The journal in arrival order (oldest first): the same records as #events. */
  #journal: EventRecord[] = [];
  /** Appends and applied marks since the journal was last pruned back to #maxEvents. */
  #sincePrune = 0;
  readonly #maxEvents: number;

  #clients = new Map<string, ClientRecord>();
  /** Client ids in order, for paging: kept sorted as clients come. */
  readonly #sortedIds: string[] = [];
  readonly #perState = Object.fromEntries(CLIENT_STATES.map((s) => [s, 0])) as Record<ClientState, number>;
  #transitions = new Map<string, TransitionRecord[]>();
  /** Retired clients by id, each packed with its transitions; in #sortedIds and #perState, in no other index. */
  #retired = new Map<string, string>();
  readonly #servers = new Map<string, ServerRecord>();
  readonly #agents = new Map<string, AgentRecord>();
  /** Bans by `kind value`. */
  readonly #bans = new Map<string, BanRecord>();
  readonly #kept = new Map<string, KeptRecord>();
  readonly #shares = new Map<string, ShareRecord>();

  #instances = new Map<string, InstanceRecord>();
  /** Instances by agent, and by their client's device MAC and /64: what quotas and placement count. */
  readonly #perAgent = new Map<string, number>();
  readonly #perMac = new Map<string, number>();
  readonly #perPrefix = new Map<string, number>();
  /** Client ids by leased address (canonicalIpv6), for whoami. */
  readonly #byAddress = new IdIndex();
  /** Client ids by `server duid` (most devices have one IA_NA: one id). */
  readonly #byDevice = new IdIndex();
  /** Instance MAC → client id; built at the first lookup (dhcp addressing only), then kept. */
  #byMac: Map<string, string> | undefined;

  /** Names with few values (servers, agents, images, profiles), kept once each instead of once per record. */
  readonly #names = new Map<string, string>();

  /** The static pool; none in dhcp addressing, where containers lease their own. */
  readonly #prefix: Prefix64 | undefined;
  #allocated = new Map<string, number>();
  #holders = new Map<number, string>();
  readonly #drawOffset: DrawOffset;

  constructor(options: { prefix?: string; maxEvents?: number; drawOffset?: DrawOffset }) {
    this.#prefix = options.prefix === undefined ? undefined : new Prefix64(options.prefix);
    this.#drawOffset = options.drawOffset ?? randomPoolOffset;
    const maxEvents = options.maxEvents ?? DEFAULT_MEMORY_EVENTS;
    if (!Number.isInteger(maxEvents) || maxEvents < 1) throw new Error(`maxEvents must be a positive integer, got ${maxEvents}`);
    this.#maxEvents = maxEvents;
  }

  transaction<T>(fn: () => T): T {
    return fn();
  }

  appendEvent(record: EventRecord): { duplicate: boolean } {
    if (this.#events.has(record.eventId)) return { duplicate: true };
    const kept = { ...record, event: { ...record.event } };
    this.#events.set(record.eventId, kept);
    this.#journal.push(kept);
    this.#prunePastBound();
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
    this.#prunePastBound();
  }

  /**
   * Keep the journal near its bound: while it holds more than #maxEvents,
   * every tenth of that many appends or applied marks forgets the applied
   * events beyond the newest #maxEvents (one pass over the journal). Marks
   * count as well as appends: a burst that came faster than it was applied
   * is pruned as its events are applied, not whenever the next event comes
   * (after the bench's 10,000 releases, 8,000 applied events stayed: 10 MB).
   */
  #prunePastBound(): void {
    if (this.#journal.length <= this.#maxEvents) return;
    if (++this.#sincePrune < Math.ceil(this.#maxEvents / 10)) return;
    this.#sincePrune = 0;
    this.pruneEvents(this.#maxEvents);
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
    if (client) return { ...client };
    const packed = this.#retired.get(id);
    return packed === undefined ? undefined : unpackRetired(id, packed).client;
  }
  putClient(client: ClientRecord): void {
    if (this.#retired.has(client.id)) this.#unretire(client.id);
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
      this.#indexAddress(client.address, client.id);
    }
    this.#clients.set(client.id, { ...client, server: this.#name(client.server), profile: client.profile === null ? null : this.#name(client.profile) });
    if (isRetired(client) && !this.#instances.has(client.id)) this.#retire(client.id);
  }
  /** Pack a live client with its transitions, out of every index but the ordered ids and the counts. */
  #retire(id: string): void {
    const client = this.#clients.get(id)!;
    this.#unindexAddress(client.address, id);
    this.#unindexDevice(client);
    this.#retired.set(id, packRetired(client, this.#transitions.get(id) ?? []));
    this.#clients.delete(id);
    this.#transitions.delete(id);
  }
  /** A retired client back among the live ones (put again, or given an instance), in its indexes. */
  #unretire(id: string): void {
    const { client, transitions } = unpackRetired(id, this.#retired.get(id)!);
    this.#retired.delete(id);
    this.#clients.set(id, { ...client, server: this.#name(client.server), profile: client.profile === null ? null : this.#name(client.profile) });
    if (transitions.length > 0) this.#transitions.set(id, transitions);
    this.#indexDevice(client);
    this.#indexAddress(client.address, id);
  }
  #indexAddress(address: string, id: string): void {
    const key = canonicalIpv6(address);
    if (key !== null) this.#byAddress.add(key, id);
  }
  #unindexAddress(address: string, id: string): void {
    const key = canonicalIpv6(address);
    if (key !== null) this.#byAddress.remove(key, id);
  }
  /** Live clients by id, but the retired: one still holding an instance is unpacked, and still retired (isRetired). */
  #liveClients(ids: readonly string[]): ClientRecord[] {
    const clients: ClientRecord[] = [];
    for (const id of ids) {
      const client = this.#clients.get(id)!;
      if (!isRetired(client)) clients.push({ ...client });
    }
    return clients;
  }
  deviceClients(server: string, duid: string): ClientRecord[] {
    return this.#liveClients(this.#byDevice.get(deviceKeyOf({ server, duid })));
  }
  #indexDevice(client: ClientRecord): void {
    this.#byDevice.add(deviceKeyOf(client), client.id);
  }
  #unindexDevice(client: ClientRecord): void {
    this.#byDevice.remove(deviceKeyOf(client), client.id);
  }
  clientsWithAddress(address: string): ClientRecord[] {
    const key = canonicalIpv6(address);
    return key === null ? [] : this.#liveClients(this.#byAddress.get(key));
  }
  listClientsPage(after: string | null, limit: number): ClientRecord[] {
    const start = after === null ? 0 : this.#firstIdAfter(after);
    return this.#sortedIds.slice(start, start + limit).map((id) => this.getClient(id)!);
  }
  listClients(filter: ClientListFilter = {}): ClientRecord[] {
    const retired = filter.retired ?? true;
    const clients: ClientRecord[] = [];
    // A retired client still holding an instance is not packed yet (deleteInstance packs it): the same test as a packed one.
    for (const client of this.#clients.values()) {
      if (retired === true || !isRetired(client) || (retired !== false && client.updatedAt >= retired.since)) clients.push({ ...client });
    }
    if (retired === false) return clients;
    for (const [id, packed] of this.#retired) {
      if (retired === true || retiredAt(packed) >= retired.since) clients.push(unpackRetired(id, packed).client);
    }
    return clients;
  }
  clientsPerState(): Record<ClientState, number> {
    return { ...this.#perState };
  }
  addTransition(transition: TransitionRecord): void {
    const packed = this.#retired.get(transition.clientId);
    if (packed !== undefined) {
      const { client, transitions } = unpackRetired(transition.clientId, packed);
      this.#retired.set(client.id, packRetired(client, [...transitions.slice(-(MEMORY_TRANSITIONS - 1)), transition]));
      return;
    }
    // A new array of the exact length each time (concat; at most MEMORY_TRANSITIONS to
    // copy): push or spread would give most clients' one or two transitions 17 slots.
    const list = this.#transitions.get(transition.clientId) ?? [];
    const kept = list.length >= MEMORY_TRANSITIONS ? list.slice(list.length - MEMORY_TRANSITIONS + 1) : list;
    this.#transitions.set(transition.clientId, kept.concat([{ ...transition }]));
  }
  listTransitions(clientId: string, limit: number): TransitionRecord[] {
    const packed = this.#retired.get(clientId);
    if (packed !== undefined) return unpackRetired(clientId, packed).transitions.slice(-limit).reverse();
    return (this.#transitions.get(clientId) ?? []).slice(-limit).reverse().map((t) => ({ ...t }));
  }

  pruneGoneClients(before: string, limit: number): number {
    const gone = new Set<string>();
    for (const client of this.#clients.values()) {
      if (gone.size >= limit) break;
      if (client.state === 'gone' && client.updatedAt < before) gone.add(client.id);
    }
    for (const [id, packed] of this.#retired) {
      if (gone.size >= limit) break;
      if (retiredAt(packed) < before) gone.add(id);
    }
    if (gone.size === 0) return 0;
    for (const id of gone) {
      // A retired client that still held an instance is packed by deleteInstance, out of every index.
      this.deleteInstance(id);
      if (this.#retired.delete(id)) {
        this.releaseAddress(id);
        this.#perState.gone--;
        continue;
      }
      const client = this.#clients.get(id)!;
      this.#clients.delete(id);
      this.releaseAddress(id);
      this.#unindexAddress(client.address, id);
      this.#unindexDevice(client);
      this.#perState[client.state]--;
      this.#transitions.delete(id);
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
      // A retired client has none: one given an instance is live again.
      if (this.#retired.has(instance.clientId)) this.#unretire(instance.clientId);
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
    // A retired client kept unpacked for its instance is packed now it has none.
    const client = this.#clients.get(clientId);
    if (client && isRetired(client)) this.#retire(clientId);
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

  /**
   * Rebuild the per-client maps at their size. V8 grows a Map's table as
   * entries come, doubling it while deleted entries still hold slots, and
   * shrinks it only once it is under a quarter full: after a burst (10,000
   * clients came and went while 10,000 stayed) seven maps kept tables for
   * 32,768 entries, 3 MB more than 10,000 need. Run when the daemon is idle:
   * O(clients), 10-20 ms at 10,000.
   */
  compactMemory(): void {
    this.#clients = new Map(this.#clients);
    this.#transitions = new Map(this.#transitions);
    this.#retired = new Map(this.#retired);
    this.#instances = new Map(this.#instances);
    this.#allocated = new Map(this.#allocated);
    this.#holders = new Map(this.#holders);
    this.#events = new Map(this.#events);
    this.#byAddress.compact();
    this.#byDevice.compact();
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
