import type { Store } from './store.js';
import type { AgentRecord, ClientRecord, EventRecord, InstanceOwner, InstanceRecord, ServerRecord, TransitionRecord } from './types.js';
import { FIRST_POOL_OFFSET, LAST_POOL_OFFSET, Prefix64 } from './ipv6.js';

/** The store with `[sql] enabled = false`: all state in this process, gone at exit. */
export class MemoryStore implements Store {
  readonly #events = new Map<string, EventRecord>();
  readonly #clients = new Map<string, ClientRecord>();
  readonly #transitions = new Map<string, TransitionRecord[]>();
  readonly #servers = new Map<string, ServerRecord>();
  readonly #instances = new Map<string, InstanceRecord>();
  readonly #agents = new Map<string, AgentRecord>();
  /** Client ids in order, for paging; rebuilt after a new client. */
  #sortedIds: string[] | undefined;
  /** The static pool; none in dhcp addressing, where containers lease their own. */
  readonly #prefix: Prefix64 | undefined;
  readonly #allocated = new Map<string, number>();
  readonly #holders = new Map<number, string>();
  #next = FIRST_POOL_OFFSET;
  readonly #maxEvents: number;
  readonly #maxTransitions = 50;

  constructor(options: { prefix?: string; maxEvents?: number }) {
    this.#prefix = options.prefix === undefined ? undefined : new Prefix64(options.prefix);
    this.#maxEvents = options.maxEvents ?? 10_000;
  }

  transaction<T>(fn: () => T): T {
    return fn();
  }

  appendEvent(record: EventRecord): { duplicate: boolean } {
    if (this.#events.has(record.eventId)) return { duplicate: true };
    this.#events.set(record.eventId, structuredClone(record));
    if (this.#events.size > this.#maxEvents) this.pruneEvents(this.#maxEvents);
    return { duplicate: false };
  }

  markEventApplied(eventId: string, appliedAt: string, outcome: string): void {
    const record = this.#events.get(eventId);
    if (record) Object.assign(record, { appliedAt, outcome });
  }

  unappliedEvents(): EventRecord[] {
    return [...this.#events.values()].filter((e) => e.appliedAt === null).map((e) => structuredClone(e));
  }

  recentEvents(limit: number): EventRecord[] {
    return [...this.#events.values()].slice(-limit).reverse().map((e) => structuredClone(e));
  }

  pruneEvents(keep: number): number {
    let excess = this.#events.size - keep;
    let removed = 0;
    for (const [id, record] of this.#events) {
      if (excess <= 0) break;
      if (record.appliedAt === null) continue;
      this.#events.delete(id);
      excess--;
      removed++;
    }
    return removed;
  }

  getClient(id: string): ClientRecord | undefined {
    const client = this.#clients.get(id);
    return client && { ...client };
  }
  putClient(client: ClientRecord): void {
    if (!this.#clients.has(client.id)) this.#sortedIds = undefined;
    this.#clients.set(client.id, { ...client });
  }
  listClientsPage(after: string | null, limit: number): ClientRecord[] {
    this.#sortedIds ??= [...this.#clients.keys()].sort();
    const ids = this.#sortedIds;
    // Binary search for the first id after `after`.
    let lo = 0;
    let hi = ids.length;
    while (after !== null && lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ids[mid]! <= after) lo = mid + 1;
      else hi = mid;
    }
    return ids.slice(lo, lo + limit).map((id) => ({ ...this.#clients.get(id)! }));
  }
  listClients(): ClientRecord[] {
    return [...this.#clients.values()].map((c) => ({ ...c }));
  }
  addTransition(transition: TransitionRecord): void {
    const list = this.#transitions.get(transition.clientId) ?? [];
    list.push({ ...transition });
    if (list.length > this.#maxTransitions) list.shift();
    this.#transitions.set(transition.clientId, list);
  }
  listTransitions(clientId: string, limit: number): TransitionRecord[] {
    return (this.#transitions.get(clientId) ?? []).slice(-limit).reverse().map((t) => ({ ...t }));
  }

  touchServer(server: ServerRecord): void {
    const known = this.#servers.get(server.name);
    this.#servers.set(server.name, known ? { ...known, role: server.role, lastSeen: server.lastSeen } : { ...server });
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
    for (const instance of this.#instances.values()) if (instance.mac === mac) return { ...instance };
    return undefined;
  }

  getInstance(clientId: string): InstanceRecord | undefined {
    const instance = this.#instances.get(clientId);
    return instance && { ...instance };
  }
  putInstance(instance: InstanceRecord): void {
    this.#instances.set(instance.clientId, { ...instance });
  }
  deleteInstance(clientId: string): void {
    this.#instances.delete(clientId);
  }
  listInstances(): InstanceRecord[] {
    return [...this.#instances.values()].map((i) => ({ ...i }));
  }
  listInstanceOwners(): InstanceOwner[] {
    const owners: InstanceOwner[] = [];
    for (const instance of this.#instances.values()) {
      const client = this.#clients.get(instance.clientId);
      owners.push({ clientId: instance.clientId, agent: instance.agent, mac: client?.mac ?? null, deviceAddress: client?.address ?? null });
    }
    return owners;
  }

  allocateAddress(clientId: string): string | undefined {
    if (!this.#prefix) return undefined;
    let offset = this.#allocated.get(clientId);
    if (offset === undefined) {
      while (this.#holders.has(this.#next) && this.#next <= LAST_POOL_OFFSET) this.#next++;
      if (this.#next > LAST_POOL_OFFSET) return undefined;
      offset = this.#next;
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
    // The lowest free offset is handed out next.
    if (offset < this.#next) this.#next = offset;
  }

  close(): void {}

  #hold(clientId: string, offset: number): void {
    this.#allocated.set(clientId, offset);
    this.#holders.set(offset, clientId);
  }
}
