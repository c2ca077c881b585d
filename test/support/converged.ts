import { expect } from 'vitest';
import type { Lab } from '../lab/lab.js';
import type { ClientView, OrchestratorApi } from './orchestrator-api.js';

/**
 * Wait until exactly `duids` are ready, each with one running container that
 * its device reaches (page names the DUID), and no other managed container
 * exists: nothing lost, nothing doubled, no orphan.
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
    const containers = await lab.docker.listContainers({ all: true, filters: { label: ['io.unionize.managed=true'] } });
    names = containers.filter((c) => c.State === 'running').map((c) => c.Names[0]!.slice(1)).sort();
    if (names.length === containers.length && names.length === leases.length) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(names).toEqual(clients.map((c) => c.instance!.containerName).sort());
  const ready = (await api.clients()).filter((c) => c.state === 'ready');
  expect(ready.map((c) => c.duid).sort()).toEqual(leases.map((l) => l.duid).sort());
  for (const [i, { duid, device }] of leases.entries()) {
    const address = clients[i]!.instance!.address.split('/')[0]!;
    // Bounded retries: on a loaded 2-core machine a first request can time out.
    let page = await lab.httpGet(device, `http://[${address}]/`);
    for (let attempt = 1; attempt < 5 && !page.body.includes(duid); attempt++) {
      await new Promise((r) => setTimeout(r, 1000));
      page = await lab.httpGet(device, `http://[${address}]/`);
    }
    expect(page.body, `${step}: device ${device} reaches its container at ${address} (${page.status} ${page.error ?? ''})`).toContain(duid);
  }
  return clients;
}
