import type Docker from 'dockerode';
import { expect } from 'vitest';
import type { Lab } from '../lab/lab.js';
import type { ClientView, OrchestratorApi } from './orchestrator-api.js';

/** Every managed container on every docker host of the lab, with the agent whose host runs it. */
export async function managedContainers(lab: Lab): Promise<Array<Docker.ContainerInfo & { agent: string }>> {
  const hosts = lab.dockerHosts.length > 0 ? lab.dockerHosts : [{ agent: 'dock1', docker: lab.docker }];
  const lists = await Promise.all(
    hosts.map(async (h) => (await h.docker.listContainers({ all: true, filters: { label: ['io.unionize.managed=true'] } })).map((c) => ({ ...c, agent: h.agent }))),
  );
  return lists.flat();
}

/**
 * Wait until exactly `duids` are ready, each with one running container that
 * its device reaches (page names the DUID), and no other managed container
 * exists on any docker host: nothing lost, nothing doubled, no orphan. Each
 * container runs on the host of the agent its instance names.
 *
 * All of it is one condition, polled as a whole: the orchestrator's view
 * lags what Docker did (a client stays `ready` until the next reconcile pass
 * finds its container stopped), and a container runs from unionize's
 * `docker start` on, before it is attached and its client `ready` again. So
 * neither "every client was ready once" nor "every container runs" implies
 * the other. Each poll lists the containers first, then the clients: a
 * container that runs again after a restart was started by a repair, which
 * moved its client out of `ready` first, so a client seen `ready` after that
 * is ready again, attached.
 */
export async function expectConverged(
  lab: Lab,
  api: OrchestratorApi,
  leases: Array<{ duid: string; device: number }>,
  step = '',
  timeoutMs = 90_000,
) {
  const wantedDuids = leases.map((l) => l.duid).sort();
  const deadline = Date.now() + timeoutMs;
  let snapshot: Snapshot | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      snapshot = await takeSnapshot(lab, api, leases);
      lastError = undefined;
      if (converged(snapshot, wantedDuids)) break;
    } catch (error) {
      // A daemon being restarted by the test: look again.
      lastError = error;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  if (!snapshot) throw new Error(`${step}: no view of clients and containers within ${timeoutMs} ms: ${String(lastError)}`);
  const { clients, names, all } = snapshot;
  const notReady = clients.filter((c) => c.state !== 'ready' || c.instance === null);
  expect(
    notReady.map((c) => `${c.duid}: ${c.state} (${c.stateReason})${c.instance ? '' : ', no instance'}`),
    `${step}: every leased client ready with an instance`,
  ).toEqual([]);
  expect(names, step).toEqual(clients.map((c) => `${c.instance!.agent}/${c.instance!.containerName}`).sort());
  expect(all.filter((c) => c.state === 'ready').map((c) => c.duid).sort(), step).toEqual(wantedDuids);
  await expectReachable(lab, leases, clients, step);
  return clients;
}

interface Snapshot {
  /** The leases' clients, in the order of `leases` (a missing one as a placeholder that is not ready). */
  clients: ClientView[];
  /** Every client the orchestrator knows. */
  all: ClientView[];
  /** `agent/name` of every managed container, sorted; one that does not run has its state after it. */
  names: string[];
}

async function takeSnapshot(lab: Lab, api: OrchestratorApi, leases: ReadonlyArray<{ duid: string }>): Promise<Snapshot> {
  // Containers first, then clients (see expectConverged).
  const containers = await managedContainers(lab);
  const all = await api.clients();
  const names = containers.map((c) => `${c.agent}/${c.Names[0]!.slice(1)}${c.State === 'running' ? '' : ` (${c.State})`}`).sort();
  const clients = leases.map(
    ({ duid }) =>
      all.find((c) => c.duid === duid) ??
      ({ duid, state: 'unknown', stateReason: 'not known to the orchestrator', instance: null } as unknown as ClientView),
  );
  return { clients, all, names };
}

function converged({ clients, all, names }: Snapshot, wantedDuids: readonly string[]): boolean {
  if (clients.some((c) => c.state !== 'ready' || c.instance === null)) return false;
  const ready = all.filter((c) => c.state === 'ready').map((c) => c.duid).sort();
  if (ready.join() !== wantedDuids.join()) return false;
  const wantedNames = clients.map((c) => `${c.instance!.agent}/${c.instance!.containerName}`).sort();
  return names.join() === wantedNames.join();
}

/** Each device gets its own container's page (it names the device's DUID) at its instance's address. */
export async function expectReachable(lab: Lab, leases: Array<{ duid: string; device: number }>, clients: readonly ClientView[], step = ''): Promise<void> {
  for (const { duid, device } of leases) {
    const client = clients.find((c) => c.duid === duid);
    expect(client?.instance, `${step}: client ${duid} has an instance`).toBeTruthy();
    const address = client!.instance!.address.split('/')[0]!;
    // Bounded retries: on a loaded 2-core machine a first request can time out.
    let page = await lab.httpGet(device, `http://[${address}]/`);
    for (let attempt = 1; attempt < 5 && !page.body.includes(duid); attempt++) {
      await new Promise((r) => setTimeout(r, 1000));
      page = await lab.httpGet(device, `http://[${address}]/`);
    }
    expect(page.body, `${step}: device ${device} reaches its container at ${address} (${page.status} ${page.error ?? ''})`).toContain(duid);
  }
}
