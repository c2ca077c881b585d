import type { Store } from './store.js';
import type { ClientRecord, EventRecord, InstanceRecord } from './types.js';
import { FIRST_POOL_OFFSET, LAST_POOL_OFFSET, Prefix64 } from './ipv6.js';

/** The store with `[sql] enabled = false`: all state in this process, gone at exit. */
export class MemoryStore implements Store {
  readonly #events = new Map<string, EventRecord>();
  readonly #clients = new Map<string, ClientRecord>();
  readonly #instances = new Map<string, InstanceRecord>();
  readonly #prefix: Prefix64;
  readonly #allocated = new Map<string, number>();
  /** Released offsets, kept sorted so the lowest is reused first. */
  #freed: number[] = [];
  #next = FIRST_POOL_OFFSET;
  readonly #maxEvents: number;

  constructor(options: { prefix: string; maxEvents?: number }) {
    this.#prefix = new Prefix64(options.prefix);
    this.#maxEvents = options.maxEvents ?? 10_000;
  }

  appendEvent(record: EventRecord): { duplicate: boolean } {
    if (this.#events.has(record.eventId)) return { duplicate: true };
    this.#events.set(record.eventId, structuredClone(record));
    this.#trimEvents();
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

  getClient(id: string): ClientRecord | undefined {
    const client = this.#clients.get(id);
    return client && { ...client };
  }
  putClient(client: ClientRecord): void {
    this.#clients.set(client.id, { ...client });
  }
  listClients(): ClientRecord[] {
    return [...this.#clients.values()].map((c) => ({ ...c }));
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

  allocateAddress(clientId: string): string | undefined {
    let offset = this.#allocated.get(clientId);
    if (offset === undefined) {
      offset = this.#freed.shift() ?? (this.#next <= LAST_POOL_OFFSET ? this.#next++ : undefined);
      if (offset === undefined) return undefined;
      this.#allocated.set(clientId, offset);
    }
    return this.#prefix.addressAt(offset);
  }

  releaseAddress(clientId: string): void {
    const offset = this.#allocated.get(clientId);
    if (offset === undefined) return;
    this.#allocated.delete(clientId);
    const at = this.#freed.findIndex((o) => o > offset);
    this.#freed.splice(at < 0 ? this.#freed.length : at, 0, offset);
  }

  /** Keep the journal bounded: applied events beyond the limit are forgotten, oldest first. */
  #trimEvents(): void {
    if (this.#events.size <= this.#maxEvents) return;
    for (const [id, record] of this.#events) {
      if (this.#events.size <= this.#maxEvents) break;
      if (record.appliedAt !== null) this.#events.delete(id);
    }
  }
}
