import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * The whole path with real parts: dhclient in a device namespace → dnsmasq →
 * orchestrator-hook → orchestrator → unionize → dockerd → veth attach, then
 * the device reaches its container over IPv6, and a release removes it.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('a device lease brings up its own IPv6 container', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 2 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  async function managedContainers() {
    return lab.docker.listContainers({ all: true, filters: { label: ['io.unionize.managed=true'] } });
  }

  it('lease → container running → device pings it and gets its page → release → container gone', async () => {
    const lease = await lab.lease(1);
    const client = await api.waitForClient(lease.duid, (c) => c.state === 'ready');
    expect(client).toMatchObject({ address: lease.address, hostname: 'lab-dev-1', iaid: lease.iaid });
    const instance = client.instance!;
    const containerAddress = instance.address.split('/')[0]!;
    // In the containers' /64 (P:3::/64; the offset inside it is drawn at random, so not always written with `::`).
    expect(containerAddress.startsWith(`${lab.prefix}:3:`)).toBe(true);

    const [container] = (await managedContainers()).filter((c) => c.Names.includes(`/${instance.containerName}`));
    expect(container?.State).toBe('running');
    expect(container?.Labels['io.unionize.duid']).toBe(lease.duid);

    expect(await lab.ping(1, containerAddress)).toBe(true);
    const page = await lab.httpGet(1, `http://[${containerAddress}]/`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(lease.duid);

    await lab.release(1);
    await api.waitForClient(lease.duid, (c) => c.state === 'gone' && c.instance === null);
    const left = (await managedContainers()).filter((c) => c.Names.includes(`/${instance.containerName}`));
    expect(left).toEqual([]);
    expect(await lab.ping(1, containerAddress)).toBe(false);
  });

  it('two devices get two different containers, each reachable from its device', async () => {
    const leases = await Promise.all([lab.lease(1), lab.lease(2)]);
    const clients = await Promise.all(leases.map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready')));
    const names = clients.map((c) => c.instance!.containerName);
    const addresses = clients.map((c) => c.instance!.address.split('/')[0]!);
    expect(new Set(names).size).toBe(2);
    expect(new Set(addresses).size).toBe(2);
    for (const [i, address] of addresses.entries()) {
      const page = await lab.httpGet(i + 1, `http://[${address}]/`);
      expect(page.body).toContain(leases[i]!.duid);
      expect(page.body).not.toContain(leases[1 - i]!.duid);
    }
    const running = (await managedContainers()).filter((c) => c.State === 'running');
    expect(running.map((c) => c.Names[0]).sort()).toEqual(names.map((n) => `/${n}`).sort());
  });

  it('an unsigned or wrongly signed event gets 401 and changes nothing', async () => {
    const before = { clients: await api.clients(), containers: (await managedContainers()).length };
    const event = {
      eventId: randomUUID(),
      server: 'devnet',
      role: 'device',
      action: 'add',
      duid: '00:03:00:01:02:de:ad:be:ef:01',
      iaid: '7',
      address: `${lab.prefix}:1::1e0`,
      hostname: 'forged',
      mac: '02:de:ad:be:ef:01',
      interface: 'brdev',
      expiresAt: null,
      seenAt: new Date().toISOString(),
    };
    const body = JSON.stringify(event);
    const unsigned = await api.call('POST', '/v1/lease-events', { body, sign: false });
    expect(unsigned.status).toBe(401);
    const wrongSecret = await api.call('POST', '/v1/lease-events', { body, key: { id: api.hookKey.id, secret: Buffer.from('f'.repeat(64)) } });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.json).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    // Give a wrongly accepted event time to be applied before looking.
    await new Promise((r) => setTimeout(r, 500));
    expect(await api.clients()).toEqual(before.clients);
    expect((await managedContainers()).length).toBe(before.containers);
    const { events } = await api.get<{ events: Array<{ eventId: string }> }>('/v1/events?limit=1000');
    expect(events.map((e) => e.eventId)).not.toContain(event.eventId);
  });
});
