import type { Logger } from 'pino';
import { LABELS, type ContainerView } from '@unionize/protocol';
import type { AgentClient } from '../agents/agent-client.js';
import type { Clock } from '../clock.js';
import { deviceKeyOf, type EventDispatcher } from '../events/dispatcher.js';
import { allowsAddresses } from '../lifecycle/container-request.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import { Repeat } from '../repeat.js';
import type { Store } from '../store/store.js';

export interface ReconcilerOptions {
  store: Store;
  lifecycle: Lifecycle;
  dispatcher: EventDispatcher;
  agents: readonly AgentClient[];
  clock: Clock;
  log: Logger;
  /**
   * Rebuild unknown clients from their containers' labels instead of removing
   * them: right for the in-memory store after a restart, wrong for a durable
   * store, where a container nobody owns is an orphan.
   */
  adoptUnknown: boolean;
  /** How long an adopted client lives without a lease event confirming it, ms. */
  adoptGraceMs: number;
  /** Slack after a lease's expiry before its container is removed, ms. */
  expiryGraceMs: number;
  /** Applied journal events kept. */
  keepEvents: number;
  /** An agent lost for good: its clients are provisioned elsewhere. */
  isDead?: (agent: string) => boolean;
}

export interface ReconcileReport {
  agentsUnreachable: string[];
  expired: number;
  /** Containers whose profile TTL ran out. */
  ttlExpired: number;
  adopted: number;
  orphansRemoved: number;
  repaired: number;
}

/**
 * Compares what should run (the store) with what runs (the agents' labelled
 * containers) and queues the difference through the dispatcher, so repairs
 * stay in order with each client's lease events. dnsmasq's hook is
 * at-most-once: this is what makes the whole system converge.
 */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #repeat = new Repeat(() => this.runOnce(), (error) => this.#o.log.error({ err: error }, 'reconcile pass failed'));
  #running: Promise<ReconcileReport> | undefined;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
  }

  /** One pass; concurrent callers share the pass in progress. */
  runOnce(): Promise<ReconcileReport> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  start(intervalMs: number): void {
    this.#repeat.start(intervalMs);
  }

  stop(): void {
    this.#repeat.stop();
  }

  async #pass(): Promise<ReconcileReport> {
    const { store, lifecycle, dispatcher, clock, log } = this.#o;
    const now = clock.now().getTime();
    const report: ReconcileReport = { agentsUnreachable: [], expired: 0, ttlExpired: 0, adopted: 0, orphansRemoved: 0, repaired: 0 };

    // What the agents run, by client. An unreachable agent's containers are unknown, not absent.
    const running = new Map<string, Array<{ agent: AgentClient; view: ContainerView }>>();
    const reachable = new Set<string>();
    await Promise.all(
      this.#o.agents.map(async (agent) => {
        try {
          for (const view of await agent.listContainers()) {
            const clientId = view.labels[LABELS.clientId];
            if (!clientId) continue;
            running.set(clientId, [...(running.get(clientId) ?? []), { agent, view }]);
          }
          reachable.add(agent.name);
        } catch (error) {
          report.agentsUnreachable.push(agent.name);
          log.warn({ agent: agent.name, err: error }, 'reconcile: agent unreachable, its containers left alone');
        }
      }),
    );

    // Leases whose del never came.
    for (const client of await store.listClients({ retired: false })) {
      if (client.desired !== 'running' || !client.expiresAt) continue;
      if (Date.parse(client.expiresAt) + this.#o.expiryGraceMs >= now) continue;
      report.expired++;
      dispatcher.run(deviceKeyOf(client), async () => {
        const current = await store.getClient(client.id);
        if (current?.desired !== 'running' || !current.expiresAt) return;
        if (Date.parse(current.expiresAt) + this.#o.expiryGraceMs >= clock.now().getTime()) return;
        await lifecycle.deprovision(client.id, `lease expired at ${current.expiresAt} without renewal or release`);
      });
    }

    // Self-destruct timers (profile TTLs) that ran out, even though the lease lives.
    for (const client of await store.listClients({ retired: false })) {
      if (client.desired !== 'running' || !client.ttlExpiresAt || Date.parse(client.ttlExpiresAt) > now) continue;
      report.ttlExpired++;
      dispatcher.run(deviceKeyOf(client), () => lifecycle.expireTtl(client.id));
    }

    // Containers: adopt, record, or remove what nobody owns.
    const adoptedExpiresAt = new Date(now + this.#o.adoptGraceMs).toISOString();
    for (const [clientId, found] of running) {
      const client = await store.getClient(clientId);
      const instance = await store.getInstance(clientId);
      // Queued behind the work of its device: the client's, or the device its labels name.
      const device = client ? deviceKeyOf(client) : deviceOfLabels(found[0]!.view) ?? clientId;
      for (const { agent, view } of found) {
        const owned = client?.desired === 'running' && (!instance || (instance.agent === agent.name && instance.containerName === view.name));
        if (!client && this.#o.adoptUnknown && found.length === 1) {
          report.adopted++;
          dispatcher.run(device, async () => {
            await lifecycle.adopt(view, agent.name, adoptedExpiresAt);
          });
        } else if (owned) {
          // Its instance record was lost (a crash between create and record). Only an
          // attached container is adopted; an unattached one is left to the repair below.
          if (!instance && view.address) {
            dispatcher.run(device, async () => {
              if (!await store.getInstance(clientId)) await lifecycle.adoptInstance(clientId, view, agent.name);
            });
          }
        } else {
          report.orphansRemoved++;
          dispatcher.run(device, async () => {
            // Checked again in the queue: a lease event may have claimed it meanwhile.
            const latest = await store.getInstance(clientId);
            if ((await store.getClient(clientId))?.desired === 'running' && latest?.containerName === view.name && latest.agent === agent.name) return;
            log.info({ client: clientId, agent: agent.name, container: view.name }, 'reconcile: removing orphan container');
            await agent.deleteContainer(view.name);
          });
        }
      }
    }

    // Clients not where their lease wants them: container missing, stopped or
    // unattached, or a transition cut short (failed, or a crash mid-way).
    for (const client of await store.listClients({ retired: false })) {
      if (client.desired === 'removed' && client.state === 'gone') continue;
      if (client.desired === 'running' && client.expiresAt && Date.parse(client.expiresAt) + this.#o.expiryGraceMs < now) continue;
      if (client.desired === 'running' && client.ttlExpiresAt && Date.parse(client.ttlExpiresAt) <= now) continue;
      const instance = await store.getInstance(client.id);
      const lost = instance !== undefined && (this.#o.isDead?.(instance.agent) ?? false);
      if (instance && !reachable.has(instance.agent) && !lost) continue;
      const view = (running.get(client.id) ?? []).find((f) => f.view.name === instance?.containerName)?.view;
      const healthy = view?.state === 'running' && view.address !== null;
      // The agent's filter lets in another address than the device's (it restarted, or a change was missed).
      const filterBehind = view !== undefined && !allowsAddresses(view, await lifecycle.deviceAddressesOf(client));
      if (client.desired === 'running' && client.state === 'ready' && healthy && !filterBehind) continue;
      // A second IA_NA or an IA_TA: its address reaches its device's container; it has none of its own.
      if (client.desired === 'running' && client.state === 'ready' && !instance && (await lifecycle.sharesContainer(client))) continue;
      const why =
        client.desired === 'removed' ? `reconcile: ${client.state} but released`
        : lost ? `reconcile: agent ${instance.agent} declared dead`
        : !view ? 'reconcile: container missing'
        : !healthy ? `reconcile: container ${view.state}${view.address ? '' : ', not attached'}`
        : filterBehind ? `reconcile: agent lets ${view.deviceAddresses?.join(', ') || 'no address'} in, not the device's ${(await lifecycle.deviceAddressesOf(client)).join(', ')}`
        : `reconcile: client ${client.state}`;
      report.repaired++;
      // Only if nothing happened to the client since this snapshot; the next pass looks again.
      // Its state too, not only its time: an adoption queued above writes the client pending,
      // then ready, often in the same millisecond, and this snapshot may fall between the two.
      dispatcher.run(deviceKeyOf(client), async () => {
        const latest = await store.getClient(client.id);
        if (latest?.updatedAt !== client.updatedAt || latest.state !== client.state || latest.stateReason !== client.stateReason) return;
        await lifecycle.converge(client.id, why, { force: true });
      });
    }

    await store.pruneEvents(this.#o.keepEvents);
    await lifecycle.expireKept().catch((error: unknown) => log.warn({ err: error }, 'reconcile: expiring kept images failed'));
    if (report.expired || report.ttlExpired || report.adopted || report.orphansRemoved || report.repaired || report.agentsUnreachable.length) {
      log.info({ report }, 'reconcile pass queued repairs');
    }
    return report;
  }
}

/** The device a container's labels name (a container of a client this orchestrator does not know). */
function deviceOfLabels(view: ContainerView): string | undefined {
  const server = view.labels?.[LABELS.server];
  const duid = view.labels?.[LABELS.duid];
  return server && duid ? deviceKeyOf({ server, duid }) : undefined;
}
