import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type DeviceLease, type Lab } from './lab/lab.js';
import { sleep, waitFor } from './lab/process.js';
import { expectConverged } from './support/converged.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * Device address pinning: the orchestrator writes each live device's DUID
 * and address into the device dnsmasq's dhcp-hostsdir ([pinning] hostsdir),
 * so the device keeps its address while its client lives, even when dnsmasq
 * forgets the lease; the pin is released when the client is gone, so its
 * address is free again. The lab's device dnsmasq allocates sequentially when
 * pinning is on (it goes on after the highest address leased, and starts at
 * the bottom of the range with no lease), so a pin is told from luck.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('device address pinning', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 3, pinning: true });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  const pinOf = (clientId: string) => join(lab.pinDir!, clientId);
  async function waitForPin(clientId: string, line: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!existsSync(pinOf(clientId)) || readFileSync(pinOf(clientId), 'utf8') !== line) {
      if (Date.now() > deadline) throw new Error(`pin ${pinOf(clientId)} is not ${JSON.stringify(line)}`);
      await sleep(100);
    }
  }

  it('a live device keeps its pinned address when dnsmasq forgets its lease; the pin of a gone one is released', async () => {
    // One after the other: sequential allocation gives device 3 the highest address.
    const first: DeviceLease[] = [];
    for (const d of [1, 2, 3]) first.push(await lab.lease(d));
    const clients = await Promise.all(first.map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready', 60_000)));
    // One dhcp-host line per device (dnsmasq(8) --dhcp-host, DHCPv6 form), and dnsmasq read it.
    for (const [i, c] of clients.entries()) await waitForPin(c.id, `id:${first[i]!.duid},[${first[i]!.address}]\n`);
    const dnsmasqLog = () => readFileSync(lab.daemons.dnsmasq.logFile, 'utf8');
    expect(dnsmasqLog()).toContain(`read ${pinOf(clients[0]!.id)}`);

    // Devices 1 and 2 release: their clients are gone, and their pins with them; device 3's stays.
    await lab.release(1);
    await lab.release(2);
    for (const l of first.slice(0, 2)) await api.waitForClient(l.duid, (c) => c.state === 'gone');
    await waitFor('only the live device is pinned', () => readdirSync(lab.pinDir!).join() === clients[2]!.id || undefined, { timeoutMs: 15_000 });

    // dnsmasq forgets a removed hosts file when it re-reads the directory (the SIGHUP [pinning] dnsmasq_pidfile
    // sends; the orchestrator here may not signal the root dnsmasq, so the test does). Device 1 comes back with
    // no memory of its lease (its DUID kept): no pin holds its old address, so it gets the next free one, which
    // the orchestrator then pins.
    const reads = () => dnsmasqLog().split(`read ${lab.pinDir!}/`).length;
    const readsBefore = reads();
    const pid = Number(readFileSync(join(lab.dir, 'dnsmasq', 'dnsmasq.pid'), 'utf8').trim());
    process.kill(pid, 'SIGHUP');
    await waitFor('dnsmasq re-read its hostsdir', () => reads() > readsBefore || undefined, { timeoutMs: 15_000 });
    await lab.forgetLease(1);
    const moved = await lab.lease(1);
    expect(moved.duid).toBe(first[0]!.duid);
    expect(moved.address).not.toBe(first[0]!.address);
    await waitForPin(clients[0]!.id, `id:${moved.duid},[${moved.address}]\n`);

    // dnsmasq loses every lease (restarted on an empty lease file): it starts allocating at the bottom of the
    // range again, but device 3, whose client lives, gets its pinned address back.
    await lab.daemons.dnsmasq.stop();
    writeFileSync(lab.dnsmasqLeaseFile, '');
    await lab.daemons.dnsmasq.start();
    await lab.forgetLease(3);
    const kept = await lab.lease(3);
    expect(kept.address).toBe(first[2]!.address);
    expect(readdirSync(lab.pinDir!).sort()).toEqual([clients[0]!.id, clients[2]!.id].sort());

    // Both live devices have their containers, each reachable from its device.
    await expectConverged(lab, api, [{ duid: first[0]!.duid, device: 1 }, { duid: first[2]!.duid, device: 3 }], 'leased again');
  });
});
