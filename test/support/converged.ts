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
 */
export async function expectConverged(
  lab: Lab,
  api: OrchestratorApi,
  leases: Array<{ duid: string; device: number }>,
  step = '',
  timeoutMs = 90_000,
) {
  const clients: ClientView[] = [];
  for (const { duid } of leases) clients.push(await api.waitForClient(duid, (c) => c.state === 'ready' && c.instance !== null, timeoutMs));
  const deadline = Date.now() + timeoutMs;
  let names: string[] = [];
  for (;;) {
    const containers = await managedContainers(lab);
    names = containers.filter((c) => c.State === 'running').map((c) => `${c.agent}/${c.Names[0]!.slice(1)}`).sort();
    if (names.length === containers.length && names.length === leases.length) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(names, step).toEqual(clients.map((c) => `${c.instance!.agent}/${c.instance!.containerName}`).sort());
  const ready = (await api.clients()).filter((c) => c.state === 'ready');
  expect(ready.map((c) => c.duid).sort()).toEqual(leases.map((l) => l.duid).sort());
  await expectReachable(lab, leases, clients, step);
  return clients;
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
