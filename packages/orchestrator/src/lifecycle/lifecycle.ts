import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { DHCP_ADDRESS, LABELS, clientIdOf, keptImageRef, isDhcpAddress, isTemporaryIaid, macOf, type AddressingMode, type ContainerView, type EventOutcome, type LeaseEvent } from '@unionize/protocol';
import type { AgentClient } from '../agents/agent-client.js';
import { banReason } from '../bans/bans.js';
import { AgentError } from '../agents/errors.js';
import { Mutex } from './mutex.js';
import { chooseAgent } from '../agents/placement.js';
import type { Clock } from '../clock.js';
import { chooseProfile, defaultProfile, type Profile } from '../profiles/profiles.js';
import type { Store } from '../store/store.js';
import type { BanRecord, ClientRecord, ClientState, InstanceRecord, KeptRecord } from '../store/types.js';
import { containerRequest, deviceAddressesOf } from './container-request.js';
import type { Quotas } from './quotas.js';

/** Where new clients may go; the AgentMonitor is the real one. */
export interface Placement {
  /** Agents a new client may be placed on (healthy, not draining). */
  candidates(): readonly AgentClient[];
  /** Most containers on an agent; 0 for no limit. */
  capacity(agent: string): number;
  /** An agent lost for good: its clients are provisioned elsewhere. */
  isDead(agent: string): boolean;
}

/** A restore's source: a kept image and the agent that holds it. */
interface RestoreFrom {
  image: string;
  agent: string;
}

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
  /** `static`: addresses from the store's pool; `dhcp`: the container leases its own. */
  addressing?: AddressingMode;
  /** Tried in order; a client no profile matches gets `image` and nothing else. */
  profiles?: readonly Profile[];
  /** Defaults to every agent, always healthy. */
  placement?: Placement;
  /** Pins each live device's address in dnsmasq's hosts, and releases it when its client is gone (optional). */
  pinner?: { pin(client: ClientRecord): void; unpin(clientId: string): void };
  /** Banned devices, whose clients get no container (bans/bans.ts); none when absent. */
  bans?: { banOf(client: ClientRecord): BanRecord | undefined };
  /** Hears how each provisioning went and took (the metrics). */
  observer?: LifecycleObserver;
  /** Which agents keep which warm pools (pools/pool-sync.ts); none: no request names a pool. */
  pools?: { has(agent: string, pool: string): boolean };
  /** `[instances] pool`: the default profile's warm pool. */
  defaultPool?: number;
}

/** What provisioning looks like from outside: metrics/observer.ts times it. */
export interface LifecycleObserver {
  /** `ok`: the container runs; `refused`: a quota or no agent said no; `failed`: it threw. */
  provisioned(result: 'ok' | 'refused' | 'failed', seconds: number): void;
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
  readonly #addressing: AddressingMode;
  readonly #profiles: readonly Profile[];
  readonly #pools: LifecycleOptions['pools'];
  readonly #defaultProfile: Profile;
  readonly #placement: Placement;
  readonly #pinner: LifecycleOptions['pinner'];
  readonly #bans: LifecycleOptions['bans'];
  readonly #observer: LifecycleObserver | undefined;
  /** clientId → agent of the new containers being made: not in the store's instances until made, but they take room. */
  readonly #placing = new Map<string, string>();
  /** Placement, quota admission and what they count (a new instance, a released reservation) one at a time: the store's answers are awaited. */
  readonly #admission = new Mutex();

  constructor(options: LifecycleOptions) {
    this.#store = options.store;
    this.#agents = options.agents;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#image = options.image;
    this.#prefixLength = options.prefixLength;
    this.#quotas = options.quotas;
    this.#addressing = options.addressing ?? 'static';
    this.#profiles = options.profiles ?? [];
    this.#defaultProfile = defaultProfile(options.image, options.defaultPool ?? 0);
    this.#pools = options.pools;
    this.#placement = options.placement ?? { candidates: () => this.#agents, capacity: () => 0, isDead: () => false };
    this.#pinner = options.pinner;
    this.#bans = options.bans;
    this.#observer = options.observer;
  }

  /** Apply one lease event to its client; returns the outcome to journal. */
  async applyEvent(clientId: string, event: LeaseEvent): Promise<EventOutcome> {
    if (event.role === 'instance') return await this.#bindInstanceLease(event);
    if (event.action === 'del') {
      const client = await this.#store.getClient(clientId);
      if (!client) return { kind: 'ignored', reason: 'release for an unknown client' };
      if (client.state === 'gone') {
        if (client.desired === 'running') await this.#store.putClient({ ...client, desired: 'removed' });
        return { kind: 'ignored', reason: 'already gone' };
      }
      await this.deprovision(clientId, 'lease released (del)');
      return { kind: 'deprovisioned' };
    }
    const before = (await this.#store.getClient(clientId))?.address;
    const client = await this.#recordLease(clientId, event);
    if (client.desired === 'removed') return { kind: 'cooling', until: client.cooldownUntil };
    // One device, one container: an IA_TA alone makes none; its address reaches the one its device's IA_NA gets.
    const shares = !await this.#store.getInstance(clientId) && await this.#holderOf(client) !== undefined;
    if (isTemporaryIaid(client.iaid) && !shares) {
      return { kind: 'ignored', reason: `temporary address (IA_TA ${client.iaid}): no container of its own, and its device has none yet` };
    }
    if (client.state === 'ready' && (shares || await this.#store.getInstance(clientId))) {
      // A renewal with another address: the agent is told, so the device keeps reaching its container.
      if (before !== undefined && before !== client.address) await this.provision(clientId, `device address changed from ${before} to ${client.address}`);
      return { kind: 'refreshed', action: event.action };
    }
    const made = await this.provision(clientId, event.action === 'add' ? 'new lease (add)' : 'known lease without a container (old)');
    return made ? { kind: 'provisioned' } : { kind: 'refused', reason: (await this.#mustGet(clientId)).stateReason };
  }

  /**
   * Make sure the client has a running, attached container. Resolves false
   * when a quota refuses it a new one: the client is then `failed` with a
   * `quota: …` reason, and is looked at again on its next lease event or
   * reconcile pass (no backoff timer: nothing changes by waiting alone).
   */
  async provision(clientId: string, reason: string): Promise<boolean> {
    const started = performance.now();
    const took = () => (performance.now() - started) / 1000;
    try {
      const made = await this.#provision(clientId, reason);
      this.#observer?.provisioned(made ? 'ok' : 'refused', took());
      return made;
    } catch (error) {
      this.#observer?.provisioned('failed', took());
      throw error;
    }
  }

  async #provision(clientId: string, reason: string, from?: RestoreFrom): Promise<boolean> {
    const ban = this.#bans?.banOf(await this.#mustGet(clientId));
    if (ban) {
      // Banned: no container (one made before the ban goes), no pin; `failed` with the ban's reason while the lease lasts.
      if (await this.#store.getInstance(clientId)) await this.deprovision(clientId, banReason(ban));
      this.#unpin(clientId);
      await this.#refuse(await this.#mustGet(clientId), banReason(ban));
      return false;
    }
    const client = await this.#mustGet(clientId);
    let existing = await this.#store.getInstance(clientId);
    // The device's clients, read once: its live siblings (a second IA_NA, an IA_TA) and any cooling down.
    const device = await this.#store.deviceClients(client.server, client.duid);
    const siblings = liveSiblings(device, client);
    const holder = existing ? undefined : await this.#holderAmong(siblings);
    if (holder) return this.#joinHolder(client, holder, reason);
    const cooling = coolingSibling(device, client, this.#clock.now().getTime());
    if (!existing && cooling) {
      await this.#refuse(client, `its device is cooling down until ${cooling.cooldownUntil} (the TTL of client ${cooling.id} ran out)`);
      return false;
    }
    if (!existing && isTemporaryIaid(client.iaid)) {
      if (client.state !== 'pending') await this.#transition(client, 'pending', `temporary address (IA_TA ${client.iaid}): waits for its device's IA_NA`);
      return false;
    }
    if (existing && this.#placement.isDead(existing.agent)) {
      // Its container is out of reach for good: make it anew elsewhere. What the
      // dead agent still runs is an orphan the reconciler removes if it returns.
      this.#log.warn({ client: clientId, agent: existing.agent }, 'agent declared dead: provisioning the client elsewhere');
      await this.#store.deleteInstance(clientId);
      existing = undefined;
    }
    const fixed = from ? this.#agentNamed(from.agent) : existing ? this.#agentNamed(existing.agent) : undefined;
    const placed = existing ? { agent: fixed, admitted: () => {} } : await this.#admission.run(() => this.#place(client, fixed));
    if ('refused' in placed) {
      await this.#refuse(client, placed.refused);
      return false;
    }
    const { agent, admitted } = placed;
    const release = () => {
      admitted();
      if (this.#placing.get(clientId) === agent?.name) this.#placing.delete(clientId);
    };
    await this.#transition(client, 'provisioning', reason);
    try {
      if (!agent) throw new AgentError('ORCH_NO_AGENT', 'no healthy agent with room to place the container on', { retryable: true });
      const chosen = (existing && this.#profileNamed(client.profile)) || chooseProfile(this.#profiles, this.#defaultProfile, client);
      // A restore makes the container from the device's kept image, with its profile's limits.
      const profile = from ? { ...chosen, image: from.image } : chosen;
      const address = await this.#addressFor(clientId);
      // From a kept image: never a pool member (those run the profile's image).
      const pooled = !from && profile.pool > 0 && (this.#pools?.has(agent.name, profile.name) ?? false);
      const view = await agent.createContainer(containerRequest(client, profile, address, deviceAddressesOf(client, siblings), pooled));
      const now = this.#clock.now();
      // A new container starts its profile's TTL; a repaired one keeps the running clock.
      const ttlExpiresAt = existing ? client.ttlExpiresAt : profile.ttlSeconds ? new Date(now.getTime() + profile.ttlSeconds * 1000).toISOString() : null;
      const leased = isDhcpAddress(address) ? view.address : address;
      await this.#admission.run(() => this.#store.putInstance({
        clientId,
        agent: agent.name,
        containerName: view.name,
        containerId: view.id,
        address: leased ?? DHCP_ADDRESS,
        mac: macOf(clientId),
        image: profile.image,
        createdAt: existing?.createdAt ?? now.toISOString(),
      }));
      const updated = { ...(await this.#mustGet(clientId)), profile: profile.name === 'default' ? null : profile.name, ttlExpiresAt, cooldownUntil: null };
      if (leased) await this.#transition(updated, 'ready', `container ${view.name} on ${agent.name} at ${leased.split('/')[0]}`);
      else await this.#transition(updated, 'provisioning', `container ${view.name} on ${agent.name}: waiting for its DHCPv6 lease`);
      for (const sibling of siblings) await this.#markJoined(await this.#mustGet(sibling.id), clientId);
      return true;
    } catch (error) {
      await this.#transition(await this.#mustGet(clientId), 'failed', `provisioning failed: ${(error as Error).message}`);
      throw error;
    } finally {
      await this.#admission.run(release);
    }
  }

  /**
   * Containers on an agent: those recorded (counted by the store) and, since
   * clients are provisioned in parallel (the dispatcher's concurrency), those
   * other clients are having made there now, or a burst would all land on one
   * agent, over its capacity.
   */
  #load(stored: ReadonlyMap<string, number>, agent: string, clientId: string): number {
    let n = stored.get(agent) ?? 0;
    for (const [id, placed] of this.#placing) if (placed === agent && id !== clientId) n++;
    return n;
  }

  /** Choose an agent for a new container and admit it past the quotas; run under #admission, so no other placement counts in between. */
  async #place(client: ClientRecord, fixed: AgentClient | undefined): Promise<{ agent: AgentClient | undefined; admitted: () => void } | { refused: string }> {
    const stored = fixed ? new Map<string, number>() : await this.#store.instancesPerAgent();
    const agent = fixed ?? chooseAgent(this.#placement.candidates(), (name) => this.#load(stored, name, client.id), (name) => this.#placement.capacity(name));
    let admitted = () => {};
    if (agent && this.#quotas) {
      const admission = await this.#quotas.admit(client, agent.name, this.#store);
      if (!admission.ok) return { refused: admission.reason };
      admitted = admission.release;
    }
    if (agent) this.#placing.set(client.id, agent.name);
    return { agent, admitted };
  }

  /** `ADDRESS/LEN` from the pool (static), or `dhcp`. */
  async #addressFor(clientId: string): Promise<string> {
    if (this.#addressing === 'dhcp') return DHCP_ADDRESS;
    const address = await this.#store.allocateAddress(clientId);
    if (!address) throw new AgentError('ORCH_POOL_EXHAUSTED', 'no free container address in the pool', { retryable: true });
    return `${address}/${this.#prefixLength}`;
  }

  /**
   * dhcp addressing: the container bridge's dnsmasq reports a container's own
   * lease (role `instance`); it is bound to its instance by MAC, which the
   * agent set from the client key.
   */
  async #bindInstanceLease(event: LeaseEvent): Promise<EventOutcome> {
    if (!event.mac) return { kind: 'ignored', reason: 'instance lease without a MAC' };
    const instance = await this.#store.findInstanceByMac(event.mac);
    if (!instance) return { kind: 'ignored', reason: `no instance has MAC ${event.mac}` };
    if (event.action === 'del') return { kind: 'released', container: instance.containerName };
    const address = `${event.address}/128`;
    if (instance.address !== address) await this.#store.putInstance({ ...instance, address });
    const client = await this.#store.getClient(instance.clientId);
    if (client && client.desired === 'running' && client.state !== 'ready') {
      await this.#transition(client, 'ready', `container ${instance.containerName} on ${instance.agent} leased ${event.address}`);
    }
    return { kind: 'bound', address: event.address, container: instance.containerName };
  }

  /**
   * Move a client's container to another agent (draining with move). The old
   * one goes first: the new one has the same MAC and address (both derive from
   * the client), and two of them on one segment would answer at once. If no
   * other agent takes it, it is made again where it was (the drained agent
   * still runs what it has).
   */
  async move(clientId: string, reason: string): Promise<void> {
    const client = await this.#store.getClient(clientId);
    const old = await this.#store.getInstance(clientId);
    if (!client || !old || client.desired !== 'running') return;
    const elsewhere = this.#placement.candidates().some((a) => a.name !== old.agent);
    if (!elsewhere) {
      this.#log.warn({ client: clientId, agent: old.agent }, 'no other agent to move to: staying');
      return;
    }
    await this.#agentNamed(old.agent)?.deleteContainer(old.containerName);
    await this.#store.deleteInstance(clientId);
    await this.provision(clientId, reason);
  }

  /**
   * `orchestratorctl restore`: the device's container made again from its
   * newest kept image, on the agent that holds it, for the device's current
   * lease; what runs now is removed first, unkept (the restore puts back
   * what was kept). Refused when the device holds no lease.
   */
  async restore(clientId: string, kept: KeptRecord): Promise<void> {
    const client = await this.#mustGet(clientId);
    if (client.desired !== 'running' || client.state === 'gone') throw new Error(`client ${clientId} holds no lease: a restore needs the device on the network`);
    const agent = this.#agentNamed(kept.agent);
    if (!agent) throw new Error(`kept image ${kept.image} is on agent ${kept.agent}, which is not configured`);
    const existing = await this.#store.getInstance(clientId);
    if (existing) {
      await this.#agentNamed(existing.agent)?.deleteContainer(existing.containerName);
      await this.#store.deleteInstance(clientId);
    }
    await this.#provision(clientId, `restored from kept image ${kept.image}`, { image: kept.image, agent: kept.agent });
  }

  /** A profile's TTL ran out: remove the container; no new one before the cool-down ends and the lease is renewed. */
  async expireTtl(clientId: string): Promise<void> {
    const client = await this.#store.getClient(clientId);
    if (!client?.ttlExpiresAt || client.desired !== 'running') return;
    if (Date.parse(client.ttlExpiresAt) > this.#clock.now().getTime()) return;
    const profile = this.#profileNamed(client.profile);
    const cooldownMs = (profile?.cooldownSeconds ?? 0) * 1000;
    await this.deprovision(clientId, `TTL ran out at ${client.ttlExpiresAt}`);
    const cooldownUntil = new Date(this.#clock.now().getTime() + cooldownMs).toISOString();
    await this.#store.putClient({ ...(await this.#mustGet(clientId)), ttlExpiresAt: null, cooldownUntil });
  }

  #profileNamed(name: string | null): Profile | undefined {
    if (name === null) return this.#defaultProfile;
    return this.#profiles.find((p) => p.name === name);
  }

  /** A quota or a ban said no: failed, with the reason; the same refusal again records nothing new. */
  async #refuse(client: ClientRecord, reason: string): Promise<void> {
    if (client.state === 'failed' && client.stateReason === reason) {
      this.#log.debug({ client: client.id, reason }, 'still refused by quota');
      return;
    }
    await this.#transition(client, 'failed', reason);
  }

  /** Remove the client's container and free its address. */
  async deprovision(clientId: string, reason: string): Promise<void> {
    const client = { ...(await this.#mustGet(clientId)), desired: 'removed' as const };
    await this.#transition(client, 'deprovisioning', reason);
    const instance = await this.#store.getInstance(clientId);
    try {
      if (instance) {
        const agent = this.#agentNamed(instance.agent);
        if (agent) await this.#keep(client, instance, agent);
        if (agent) await agent.deleteContainer(instance.containerName);
        else this.#log.warn({ client: clientId, agent: instance.agent }, 'agent no longer configured: forgetting its instance');
        await this.#store.deleteInstance(clientId);
      }
      await this.#store.releaseAddress(clientId);
      await this.#transition(await this.#mustGet(clientId), 'gone', reason);
      // A pin lives while its client does: the range never fills with the pins of devices gone.
      this.#unpin(clientId);
      if (!instance) await this.#leaveHolder(await this.#mustGet(clientId));
    } catch (error) {
      await this.#transition(await this.#mustGet(clientId), 'failed', `deprovisioning failed: ${(error as Error).message}`);
      throw error;
    }
  }

  /**
   * A profile with `keep = true`: the container becomes an image on its agent
   * before it goes, recorded here; what the agent removed to stay under
   * keep_max_mb is forgotten. A failed commit fails the deprovisioning (it is
   * tried again): the container is not removed unkept.
   */
  async #keep(client: ClientRecord, instance: InstanceRecord, agent: AgentClient): Promise<void> {
    const profile = this.#profileNamed(client.profile);
    if (!profile?.keep) return;
    const now = this.#clock.now();
    const result = await agent.keepContainer(instance.containerName, {
      client: client.id,
      tag: keptImageRef(client.id, now).tag,
      hostname: client.hostname ?? '',
      profile: profile.name,
      ...(profile.keep.maxBytes > 0 ? { maxBytes: profile.keep.maxBytes } : {}),
    });
    if (!result) return;
    const { kept } = result;
    await this.#store.transaction((tx) => {
      tx.putKept({
        image: kept.image,
        imageId: kept.id,
        clientId: client.id,
        agent: agent.name,
        hostname: kept.hostname,
        profile: kept.profile,
        sizeBytes: kept.sizeBytes,
        createdAt: kept.createdAt,
        expiresAt: profile.keep!.days > 0 ? new Date(now.getTime() + profile.keep!.days * 86_400_000).toISOString() : null,
      });
      for (const gone of result.removed) tx.deleteKept(gone.image);
    });
    for (const gone of result.removed) this.#log.warn({ agent: agent.name, image: gone.image, sizeBytes: gone.sizeBytes }, 'kept image removed by its agent: over keep_max_mb');
    this.#log.info({ client: client.id, agent: agent.name, image: kept.image, sizeBytes: kept.sizeBytes }, 'container kept');
  }

  /** Kept images past their keep_days go (an unreachable agent's are tried on the next pass); returns how many went. */
  async expireKept(): Promise<number> {
    const now = this.#clock.now().getTime();
    let removed = 0;
    for (const kept of await this.#store.listKept()) {
      if (kept.expiresAt === null || Date.parse(kept.expiresAt) > now) continue;
      const agent = this.#agentNamed(kept.agent);
      try {
        await agent?.deleteKept(kept.imageId);
      } catch (error) {
        this.#log.warn({ agent: kept.agent, image: kept.image, err: error }, 'kept image past keep_days not removed yet');
        continue;
      }
      await this.#store.deleteKept(kept.image);
      removed++;
      this.#log.info({ agent: kept.agent, image: kept.image, expiresAt: kept.expiresAt }, 'kept image removed: past keep_days');
    }
    return removed;
  }

  /**
   * Drive a client towards what its lease asks for (retries, the reconciler).
   * `force` provisions even a client marked ready, whose container was found gone.
   */
  async converge(clientId: string, reason: string, options: { force?: boolean } = {}): Promise<void> {
    const client = await this.#store.getClient(clientId);
    if (!client) return;
    if (client.desired === 'running') {
      if (options.force || client.state !== 'ready' || !await this.#store.getInstance(clientId)) await this.provision(clientId, reason);
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
  async adopt(view: ContainerView, agent: string, expiresAt: string): Promise<boolean> {
    const labels = view.labels;
    const clientId = labels[LABELS.clientId];
    const server = labels[LABELS.server];
    const duid = labels[LABELS.duid];
    const iaid = labels[LABELS.iaid];
    if (!clientId || !server || !duid || !iaid || !view.address || await this.#store.getClient(clientId)) return false;
    if (clientIdOf(server, duid, iaid) !== clientId) return false;
    const [address] = view.address.split('/');
    if (!address || (this.#addressing === 'static' && !await this.#store.claimAddress(clientId, address))) return false;
    const now = this.#clock.now().toISOString();
    await this.#store.transaction((tx) => {
      tx.putClient({
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
        profile: labels[LABELS.profile] && labels[LABELS.profile] !== 'default' ? labels[LABELS.profile]! : null,
        ttlExpiresAt: null,
        cooldownUntil: null,
        firstSeen: now,
        lastSeen: now,
        updatedAt: now,
      });
      tx.putInstance(adoptedInstance(clientId, view, agent));
    });
    await this.#transition(await this.#mustGet(clientId), 'ready', `adopted container ${view.name} on ${agent}`);
    return true;
  }

  /** Record a container an agent reports for a known client whose instance record is missing. */
  async adoptInstance(clientId: string, view: ContainerView, agent: string): Promise<void> {
    await this.#store.putInstance(adoptedInstance(clientId, view, agent));
  }

  /** The addresses the client's container lets in: its own lease's and its device's other live leases'. */
  async deviceAddressesOf(client: ClientRecord): Promise<string[]> {
    return deviceAddressesOf(client, await this.#siblingsOf(client));
  }

  /** True when the client holds no container because its address reaches its device's (a second IA_NA, an IA_TA). */
  async sharesContainer(client: ClientRecord): Promise<boolean> {
    return !await this.#store.getInstance(client.id) && await this.#holderOf(client) !== undefined;
  }

  /** The device's client that holds its container, if another does. */
  async #holderOf(client: ClientRecord): Promise<ClientRecord | undefined> {
    return this.#holderAmong(await this.#siblingsOf(client));
  }

  /** The first of `clients` that holds an instance. */
  async #holderAmong(clients: readonly ClientRecord[]): Promise<ClientRecord | undefined> {
    for (const c of clients) if (await this.#store.getInstance(c.id)) return c;
    return undefined;
  }

  /** The device's other clients whose leases run (the dispatcher applies one device's work in order). */
  async #siblingsOf(client: ClientRecord): Promise<ClientRecord[]> {
    return liveSiblings(await this.#store.deviceClients(client.server, client.duid), client);
  }

  /**
   * One device, one container: a further lease of a device that has one (a
   * second IA_NA, an IA_TA) makes none; the holder's container is asked for
   * again with this address among the device's, so it reaches it too.
   */
  async #joinHolder(client: ClientRecord, holder: ClientRecord, reason: string): Promise<boolean> {
    await this.#provision(holder.id, `its device's address ${client.address} (IA ${client.iaid}) added: ${reason}`);
    await this.#markJoined(await this.#mustGet(client.id), holder.id);
    return true;
  }

  async #markJoined(client: ClientRecord, holderId: string): Promise<void> {
    if (await this.#store.getInstance(client.id)) return;
    const reason = `address of its device, reaching the container of client ${holderId}`;
    if (client.state !== 'ready' || client.stateReason !== reason) await this.#transition(client, 'ready', reason);
  }

  /** A lease that held no container ended: the device's container no longer lets its address in. */
  async #leaveHolder(client: ClientRecord): Promise<void> {
    const holder = await this.#holderOf(client);
    if (holder && holder.state === 'ready') await this.#provision(holder.id, `its device's address ${client.address} (IA ${client.iaid}) released`);
  }

  async #recordLease(clientId: string, event: LeaseEvent): Promise<ClientRecord> {
    const now = this.#clock.now().toISOString();
    const known = await this.#store.getClient(clientId);
    // After a TTL ran out the lease keeps its client, but no container until the cool-down is over.
    const coolingDown = known?.cooldownUntil != null && Date.parse(known.cooldownUntil) > Date.parse(now);
    const client: ClientRecord = known
      ? {
          ...known,
          address: event.address,
          hostname: event.hostname ?? known.hostname,
          mac: event.mac ?? known.mac,
          expiresAt: event.expiresAt,
          desired: coolingDown ? 'removed' : 'running',
          cooldownUntil: coolingDown ? known.cooldownUntil : null,
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
          profile: null,
          ttlExpiresAt: null,
          cooldownUntil: null,
          firstSeen: now,
          lastSeen: now,
          updatedAt: now,
        };
    await this.#store.transaction((tx) => {
      tx.touchServer({ name: event.server, role: event.role, firstSeen: now, lastSeen: now });
      tx.putClient(client);
    });
    if (client.state === 'gone' && !coolingDown) await this.#transition(client, 'pending', `leased again (${event.action})`);
    // A banned device is not pinned: its DHCP server is to ignore it, not keep it an address.
    if (!this.#bans?.banOf(client)) {
      try {
        this.#pinner?.pin(client);
      } catch (error) {
        this.#log.warn({ client: clientId, err: error }, 'could not pin the device address');
      }
    }
    return await this.#mustGet(clientId);
  }

  #unpin(clientId: string): void {
    try {
      this.#pinner?.unpin(clientId);
    } catch (error) {
      this.#log.warn({ client: clientId, err: error }, 'could not release the device address pin');
    }
  }

  async #transition(client: ClientRecord, state: ClientState, reason: string): Promise<void> {
    const from = client.state;
    const at = this.#clock.now().toISOString();
    await this.#store.transaction((tx) => {
      tx.putClient({ ...client, state, stateReason: reason, updatedAt: at });
      tx.addTransition({ clientId: client.id, from, to: state, reason, at });
    });
    const level = state === 'failed' ? 'warn' : 'info';
    this.#log[level]({ client: client.id, from, to: state, reason }, `client ${from} → ${state}`);
  }

  #agentNamed(name: string): AgentClient | undefined {
    return this.#agents.find((a) => a.name === name);
  }

  async #mustGet(clientId: string): Promise<ClientRecord> {
    const client = await this.#store.getClient(clientId);
    if (!client) throw new Error(`client ${clientId} is not in the store`);
    return client;
  }
}

/** The instance record of a container an agent reports. */
function adoptedInstance(clientId: string, view: ContainerView, agent: string): InstanceRecord {
  return {
    clientId,
    agent,
    containerName: view.name,
    containerId: view.id,
    address: view.address ?? '',
    mac: view.mac ?? macOf(clientId),
    image: view.image,
    createdAt: view.createdAt,
  };
}

/** Of a device's clients, the others whose leases run (a second IA_NA, an IA_TA). */
function liveSiblings(device: readonly ClientRecord[], client: ClientRecord): ClientRecord[] {
  return device.filter((s) => s.id !== client.id && s.role === 'device' && s.desired === 'running' && s.state !== 'gone');
}

/** Another client of the device whose TTL ran out and is cooling down: a second IA_NA does not get round it. */
function coolingSibling(device: readonly ClientRecord[], client: ClientRecord, now: number): ClientRecord | undefined {
  return device.find((s) => s.id !== client.id && s.cooldownUntil !== null && Date.parse(s.cooldownUntil) > now);
}
