import type { Logger } from 'pino';
import { LABELS, clientIdOf, containerNameOf, macOf, type ContainerView, type LeaseEvent } from '@unionize/protocol';
import type { AgentClient } from '../agents/agent-client.js';
import { AgentError } from '../agents/errors.js';
import { chooseAgent } from '../agents/placement.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { ClientRecord, ClientState } from '../store/types.js';
import type { Quotas } from './quotas.js';

export interface LifecycleOptions {
  store: Store;
  agents: readonly AgentClient[];
  clock: Clock;
  log: Logger;
  image: string;
  /** Prefix length of container addresses on the container bridge. */
  prefixLength: number;
  /** Limits on new containers; none when absent. */
  quotas?: Quotas;
}

/**
 * The client life cycle: pending → provisioning → ready → deprovisioning → gone,
 * and failed beside them. Every method is safe to call twice (idempotent by state).
 */
export class Lifecycle {
  readonly #store: Store;
  readonly #agents: readonly AgentClient[];
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #image: string;
  readonly #prefixLength: number;
  readonly #quotas: Quotas | undefined;

  constructor(options: LifecycleOptions) {
    this.#store = options.store;
    this.#agents = options.agents;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#image = options.image;
    this.#prefixLength = options.prefixLength;
    this.#quotas = options.quotas;
  }

  /** Apply one lease event to its client; returns the outcome to journal. */
  async applyEvent(clientId: string, event: LeaseEvent): Promise<string> {
    if (event.role === 'instance') return 'ignored: instance leases are used only in dhcp addressing mode';
    if (event.action === 'del') {
      const client = this.#store.getClient(clientId);
      if (!client) return 'ignored: release for an unknown client';
      if (client.state === 'gone') return 'ignored: already gone';
      await this.deprovision(clientId, 'lease released (del)');
      return 'deprovisioned';
    }
    const client = this.#recordLease(clientId, event);
    if (client.state === 'ready' && this.#store.getInstance(clientId)) return `refreshed (${event.action})`;
    const made = await this.provision(clientId, event.action === 'add' ? 'new lease (add)' : 'known lease without a container (old)');
    return made ? 'provisioned' : `refused (${this.#mustGet(clientId).stateReason})`;
  }

  /**
   * Make sure the client has a running, attached container. Resolves false
   * when a quota refuses it a new one: the client is then `failed` with a
   * `quota: …` reason, and is looked at again on its next lease event or
   * reconcile pass (no backoff timer: nothing changes by waiting alone).
   */
  async provision(clientId: string, reason: string): Promise<boolean> {
    const client = this.#mustGet(clientId);
    const existing = this.#store.getInstance(clientId);
    const agent = existing ? this.#agentNamed(existing.agent) : chooseAgent(this.#agents, this.#store.listInstances());
    let release = () => {};
    if (!existing && agent && this.#quotas) {
      const admission = this.#quotas.admit(client, agent.name, this.#store);
      if (!admission.ok) {
        this.#refuse(client, admission.reason);
        return false;
      }
      release = admission.release;
    }
    this.#transition(client, 'provisioning', reason);
    try {
      const address = this.#store.allocateAddress(clientId);
      if (!address) throw new AgentError('ORCH_POOL_EXHAUSTED', 'no free container address in the pool', { retryable: true });
      if (!agent) throw new AgentError('ORCH_NO_AGENT', 'no agent to place the container on', { retryable: true });
      const name = containerNameOf(clientId);
      const mac = macOf(clientId);
      const cidr = `${address}/${this.#prefixLength}`;
      const view = await agent.createContainer({
        name,
        image: this.#image,
        mac,
        address: cidr,
        labels: {
          [LABELS.clientId]: clientId,
          [LABELS.server]: client.server,
          [LABELS.duid]: client.duid,
          [LABELS.iaid]: client.iaid,
          [LABELS.deviceAddress]: client.address,
        },
        env: {
          CLIENT_ID: clientId,
          DEVICE_DUID: client.duid,
          DEVICE_IAID: client.iaid,
          DEVICE_ADDRESS: client.address,
          DEVICE_HOSTNAME: client.hostname ?? '',
          CONTAINER_ADDRESS: address,
        },
      });
      this.#store.putInstance({
        clientId,
        agent: agent.name,
        containerName: view.name,
        containerId: view.id,
        address: cidr,
        mac,
        image: this.#image,
        createdAt: existing?.createdAt ?? this.#clock.now().toISOString(),
      });
      this.#transition(this.#mustGet(clientId), 'ready', `container ${view.name} on ${agent.name} at ${address}`);
      return true;
    } catch (error) {
      this.#transition(this.#mustGet(clientId), 'failed', `provisioning failed: ${(error as Error).message}`);
      throw error;
    } finally {
      release();
    }
  }

  /** A quota said no: failed, with the reason; the same refusal again records nothing new. */
  #refuse(client: ClientRecord, reason: string): void {
    if (client.state === 'failed' && client.stateReason === reason) {
      this.#log.debug({ client: client.id, reason }, 'still refused by quota');
      return;
    }
    this.#transition(client, 'failed', reason);
  }

  /** Remove the client's container and free its address. */
  async deprovision(clientId: string, reason: string): Promise<void> {
    const client = { ...this.#mustGet(clientId), desired: 'removed' as const };
    this.#transition(client, 'deprovisioning', reason);
    const instance = this.#store.getInstance(clientId);
    try {
      if (instance) {
        const agent = this.#agentNamed(instance.agent);
        if (agent) await agent.deleteContainer(instance.containerName);
        else this.#log.warn({ client: clientId, agent: instance.agent }, 'agent no longer configured: forgetting its instance');
        this.#store.deleteInstance(clientId);
      }
      this.#store.releaseAddress(clientId);
      this.#transition(this.#mustGet(clientId), 'gone', reason);
    } catch (error) {
      this.#transition(this.#mustGet(clientId), 'failed', `deprovisioning failed: ${(error as Error).message}`);
      throw error;
    }
  }

  /**
   * Drive a client towards what its lease asks for (retries, the reconciler).
   * `force` provisions even a client marked ready, whose container was found gone.
   */
  async converge(clientId: string, reason: string, options: { force?: boolean } = {}): Promise<void> {
    const client = this.#store.getClient(clientId);
    if (!client) return;
    if (client.desired === 'running') {
      if (options.force || client.state !== 'ready' || !this.#store.getInstance(clientId)) await this.provision(clientId, reason);
    } else if (client.state !== 'gone') {
      await this.deprovision(clientId, reason);
    }
  }

  /**
   * Take over a container an agent reports for a client the store does not
   * know (the in-memory store after a restart): rebuild the client from the
   * container's labels. It lives until `expiresAt` unless a lease event
   * (dnsmasq's `old` replay or a renewal) confirms it.
   */
  adopt(view: ContainerView, agent: string, expiresAt: string): boolean {
    const labels = view.labels;
    const clientId = labels[LABELS.clientId];
    const server = labels[LABELS.server];
    const duid = labels[LABELS.duid];
    const iaid = labels[LABELS.iaid];
    if (!clientId || !server || !duid || !iaid || !view.address || this.#store.getClient(clientId)) return false;
    if (clientIdOf(server, duid, iaid) !== clientId) return false;
    const [address] = view.address.split('/');
    if (!address || !this.#store.claimAddress(clientId, address)) return false;
    const now = this.#clock.now().toISOString();
    this.#store.transaction(() => {
      this.#store.putClient({
        id: clientId,
        server,
        role: 'device',
        duid,
        iaid,
        address: labels[LABELS.deviceAddress] ?? '',
        hostname: null,
        mac: null,
        state: 'pending',
        desired: 'running',
        stateReason: 'adopted from agent labels',
        expiresAt,
        firstSeen: now,
        lastSeen: now,
        updatedAt: now,
      });
      this.adoptInstance(clientId, view, agent);
    });
    this.#transition(this.#mustGet(clientId), 'ready', `adopted container ${view.name} on ${agent}`);
    return true;
  }

  /** Record a container an agent reports for a known client whose instance record is missing. */
  adoptInstance(clientId: string, view: ContainerView, agent: string): void {
    this.#store.putInstance({
      clientId,
      agent,
      containerName: view.name,
      containerId: view.id,
      address: view.address ?? '',
      mac: view.mac ?? macOf(clientId),
      image: view.image,
      createdAt: view.createdAt,
    });
  }

  #recordLease(clientId: string, event: LeaseEvent): ClientRecord {
    const now = this.#clock.now().toISOString();
    const known = this.#store.getClient(clientId);
    const client: ClientRecord = known
      ? {
          ...known,
          address: event.address,
          hostname: event.hostname ?? known.hostname,
          mac: event.mac ?? known.mac,
          expiresAt: event.expiresAt,
          desired: 'running',
          lastSeen: now,
          updatedAt: now,
        }
      : {
          id: clientId,
          server: event.server,
          role: event.role,
          duid: event.duid,
          iaid: event.iaid,
          address: event.address,
          hostname: event.hostname,
          mac: event.mac,
          state: 'pending',
          desired: 'running',
          stateReason: `first seen (${event.action})`,
          expiresAt: event.expiresAt,
          firstSeen: now,
          lastSeen: now,
          updatedAt: now,
        };
    this.#store.transaction(() => {
      this.#store.touchServer({ name: event.server, role: event.role, firstSeen: now, lastSeen: now });
      this.#store.putClient(client);
    });
    if (client.state === 'gone') this.#transition(client, 'pending', `leased again (${event.action})`);
    return this.#mustGet(clientId);
  }

  #transition(client: ClientRecord, state: ClientState, reason: string): void {
    const from = client.state;
    const at = this.#clock.now().toISOString();
    this.#store.transaction(() => {
      this.#store.putClient({ ...client, state, stateReason: reason, updatedAt: at });
      this.#store.addTransition({ clientId: client.id, from, to: state, reason, at });
    });
    const level = state === 'failed' ? 'warn' : 'info';
    this.#log[level]({ client: client.id, from, to: state, reason }, `client ${from} → ${state}`);
  }

  #agentNamed(name: string): AgentClient | undefined {
    return this.#agents.find((a) => a.name === name);
  }

  #mustGet(clientId: string): ClientRecord {
    const client = this.#store.getClient(clientId);
    if (!client) throw new Error(`client ${clientId} is not in the store`);
    return client;
  }
}
