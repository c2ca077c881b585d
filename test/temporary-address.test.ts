import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientView } from '@unionize/protocol';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { waitFor } from './lab/process.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * One device, one container: a device that asks for a temporary address
 * (IA_TA, `dhclient -N -T`) beside its IA_NA gets both from real dnsmasq, and
 * the hook reports both (the temporary one with a `T` IAID). The IA_NA's
 * client gets the container; the IA_TA's holds none, and its address reaches
 * that container too, through the agent's isolation filter. Released: the
 * container goes.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('a temporary address (IA_TA) makes no second container', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 1 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  /** The device's clients once `done` holds for them (a device has one per IAID). */
  const clientsOf = (duid: string, done: (clients: ClientView[]) => boolean) =>
    waitFor(`the clients of ${duid}`, async () => {
      const clients = (await api.clients()).filter((c) => c.duid === duid);
      if (!done(clients)) throw new Error(`now: ${JSON.stringify(clients.map((c) => [c.iaid, c.state, c.stateReason]))}`);
      return clients;
    }, { timeoutMs: 30_000 });

  it('IA_NA and IA_TA leased: one container, reached from either address; IA_NA released: none', async () => {
    const lease = await lab.lease(1, { temporary: true });
    const both = await clientsOf(lease.duid, (cs) => cs.length === 2 && cs.every((c) => c.state === 'ready'));
    const holder = both.find((c) => c.iaid === lease.iaid)!;
    const temporary = both.find((c) => c.iaid.startsWith('T'))!;
    expect(holder.instance).not.toBeNull();
    expect(temporary).toMatchObject({ instance: null, stateReason: `address of its device, reaching the container of client ${holder.id}` });
    const containers = await lab.docker.listContainers({ all: true, filters: { label: [`io.unionize.duid=${lease.duid}`] } });
    expect(containers).toHaveLength(1);

    // The device reaches its container from its IA_NA's address and from its IA_TA's.
    const container = holder.instance!.address.split('/')[0]!;
    expect(temporary.address).not.toBe(holder.address);
    expect(await lab.ping(1, container, { from: holder.address })).toBe(true);
    expect(await lab.ping(1, container, { from: temporary.address })).toBe(true);

    // dhclient -r releases the IA_NA only: the IA_TA's lease runs on in dnsmasq until it expires, but
    // without its device's IA_NA it reaches no container and makes none.
    await lab.release(1);
    await clientsOf(lease.duid, (cs) => cs.length === 2 && cs.every((c) => c.instance === null)
      && cs.find((c) => c.id === holder.id)?.state === 'gone'
      && cs.find((c) => c.id === temporary.id)?.stateReason === `temporary address (IA_TA ${temporary.iaid}): waits for its device's IA_NA`);
    const left = await lab.docker.listContainers({ all: true, filters: { label: ['io.unionize.managed=true'] } });
    expect(left).toEqual([]);
  });
});
