import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventView } from '@unionize/protocol';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * One device, one container: a device that asks for a temporary address
 * (IA_TA, `dhclient -N -T`) beside its IA_NA gets both from real dnsmasq, and
 * the hook reports both (the temporary one with a `T` IAID), but only the
 * IA_NA makes a client and a container.
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

  async function temporaryEvents(duid: string, count: number): Promise<EventView[]> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { events } = await api.get<{ events: EventView[] }>('/v1/events?limit=1000');
      const temporary = events.filter((e) => e.duid === duid && e.outcome?.startsWith('ignored: temporary address (IA_TA T'));
      if (temporary.length >= count) return temporary;
      if (Date.now() > deadline) throw new Error(`${temporary.length} of ${count} IA_TA events for ${duid} applied: ${JSON.stringify(events.filter((e) => e.duid === duid))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('IA_NA and IA_TA leased: one client, one container; released: none', async () => {
    const lease = await lab.lease(1, { temporary: true });
    await api.waitForClient(lease.duid, (c) => c.state === 'ready');
    const [added] = await temporaryEvents(lease.duid, 1);
    expect(added).toMatchObject({ action: 'add', outcomeKind: 'ignored' });

    const clients = (await api.clients()).filter((c) => c.duid === lease.duid);
    expect(clients.map((c) => [c.iaid, c.state])).toEqual([[lease.iaid, 'ready']]);
    const containers = await lab.docker.listContainers({ all: true, filters: { label: [`io.unionize.duid=${lease.duid}`] } });
    expect(containers).toHaveLength(1);

    await lab.release(1);
    await api.waitForClient(lease.duid, (c) => c.state === 'gone' && c.instance === null);
    const left = await lab.docker.listContainers({ all: true, filters: { label: ['io.unionize.managed=true'] } });
    expect(left).toEqual([]);
  });
});
