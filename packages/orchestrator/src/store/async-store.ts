import type { Store, StoreWrites } from './store.js';
import type { SyncStore } from './sync-store.js';
import type { AgentRecord, BanRecord, AppliedMark, ClientListFilter, ClientRecord, ClientState, EventRecord, InstanceFilter, InstanceRecord, KeptRecord, ServerRecord, ShareRecord, TransitionRecord } from './types.js';
import type { BanTarget } from '@unionize/protocol';

/**
 * A SyncStore (memory, SQLite) as a Store: each call runs at once, whole, and
 * its answer is a settled promise; a throw becomes a rejection. A transaction's
 * writes run inside the SyncStore's own transaction, without waiting.
 */
export class AsyncStore implements Store {
  readonly #sync: SyncStore;

  constructor(sync: SyncStore) {
    this.#sync = sync;
  }

  async transaction(fn: (tx: StoreWrites) => void): Promise<void> {
    this.#sync.transaction(() => fn(this.#sync));
  }

  async appendEvent(record: EventRecord): Promise<{ duplicate: boolean }> {
    return this.#sync.appendEvent(record);
  }

  async writeJournal(events: readonly EventRecord[], applied: readonly AppliedMark[]): Promise<{ duplicate: boolean }[]> {
    return this.#sync.writeJournal(events, applied);
  }

  syncJournal(): Promise<void> {
    return this.#sync.syncJournal();
  }

  async markEventApplied(mark: AppliedMark): Promise<void> {
    return this.#sync.markEventApplied(mark);
  }

  async unappliedEvents(): Promise<EventRecord[]> {
    return this.#sync.unappliedEvents();
  }

  async recentEvents(limit: number): Promise<EventRecord[]> {
    return this.#sync.recentEvents(limit);
  }

  async quarantinedRows(): Promise<number> {
    return this.#sync.quarantinedRows();
  }

  async pruneEvents(keep: number): Promise<number> {
    return this.#sync.pruneEvents(keep);
  }

  async getClient(id: string): Promise<ClientRecord | undefined> {
    return this.#sync.getClient(id);
  }

  async putClient(client: ClientRecord): Promise<void> {
    return this.#sync.putClient(client);
  }

  async listClients(filter?: ClientListFilter): Promise<ClientRecord[]> {
    return this.#sync.listClients(filter);
  }

  async clientsWithAddress(address: string): Promise<ClientRecord[]> {
    return this.#sync.clientsWithAddress(address);
  }

  async deviceClients(server: string, duid: string): Promise<ClientRecord[]> {
    return this.#sync.deviceClients(server, duid);
  }

  async listClientsPage(after: string | null, limit: number): Promise<ClientRecord[]> {
    return this.#sync.listClientsPage(after, limit);
  }

  async clientsPerState(): Promise<Record<ClientState, number>> {
    return this.#sync.clientsPerState();
  }

  async addTransition(transition: TransitionRecord): Promise<void> {
    return this.#sync.addTransition(transition);
  }

  async pruneGoneClients(before: string, limit: number): Promise<number> {
    return this.#sync.pruneGoneClients(before, limit);
  }

  async listTransitions(clientId: string, limit: number): Promise<TransitionRecord[]> {
    return this.#sync.listTransitions(clientId, limit);
  }

  async touchServer(server: ServerRecord): Promise<void> {
    return this.#sync.touchServer(server);
  }

  async listServers(): Promise<ServerRecord[]> {
    return this.#sync.listServers();
  }

  async putAgent(agent: AgentRecord): Promise<void> {
    return this.#sync.putAgent(agent);
  }

  async listAgents(): Promise<AgentRecord[]> {
    return this.#sync.listAgents();
  }

  async getInstance(clientId: string): Promise<InstanceRecord | undefined> {
    return this.#sync.getInstance(clientId);
  }

  async findInstanceByMac(mac: string): Promise<InstanceRecord | undefined> {
    return this.#sync.findInstanceByMac(mac);
  }

  async putInstance(instance: InstanceRecord): Promise<void> {
    return this.#sync.putInstance(instance);
  }

  async deleteInstance(clientId: string): Promise<void> {
    return this.#sync.deleteInstance(clientId);
  }

  async listInstances(): Promise<InstanceRecord[]> {
    return this.#sync.listInstances();
  }

  async countInstances(filter?: InstanceFilter): Promise<number> {
    return this.#sync.countInstances(filter);
  }

  async instancesPerAgent(): Promise<Map<string, number>> {
    return this.#sync.instancesPerAgent();
  }

  async allocateAddress(clientId: string): Promise<string | undefined> {
    return this.#sync.allocateAddress(clientId);
  }

  async claimAddress(clientId: string, address: string): Promise<boolean> {
    return this.#sync.claimAddress(clientId, address);
  }

  async releaseAddress(clientId: string): Promise<void> {
    return this.#sync.releaseAddress(clientId);
  }

  async putBan(ban: BanRecord): Promise<void> {
    return this.#sync.putBan(ban);
  }

  async deleteBan(target: BanTarget): Promise<boolean> {
    return this.#sync.deleteBan(target);
  }

  async listBans(): Promise<BanRecord[]> {
    return this.#sync.listBans();
  }

  async putKept(kept: KeptRecord): Promise<void> {
    return this.#sync.putKept(kept);
  }

  async deleteKept(image: string): Promise<void> {
    return this.#sync.deleteKept(image);
  }

  async listKept(clientId?: string): Promise<KeptRecord[]> {
    return this.#sync.listKept(clientId);
  }

  async putShare(share: ShareRecord): Promise<void> {
    return this.#sync.putShare(share);
  }

  async getShare(tokenHash: string): Promise<ShareRecord | undefined> {
    return this.#sync.getShare(tokenHash);
  }

  async useShare(tokenHash: string, at: string): Promise<boolean> {
    return this.#sync.useShare(tokenHash, at);
  }

  async deleteShare(tokenHash: string): Promise<void> {
    return this.#sync.deleteShare(tokenHash);
  }

  async listShares(): Promise<ShareRecord[]> {
    return this.#sync.listShares();
  }

  async compactMemory(): Promise<void> {
    return this.#sync.compactMemory();
  }

  async close(): Promise<void> {
    return this.#sync.close();
  }
}
