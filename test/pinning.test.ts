import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type DeviceLease, type Lab } from './lab/lab.js';
import { sleep } from './lab/process.js';
import { expectConverged } from './support/converged.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * Device address pinning: the orchestrator writes each device's DUID and
 * address into the device dnsmasq's dhcp-hostsdir ([pinning] hostsdir), so
 * a device that releases its lease, forgets it, and asks again gets the same
 * address. The lab's device dnsmasq allocates sequentially when pinning is
 * on, so without a pin such a device gets the next free address instead: the
 * control case shows it.
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

  it('a device that releases and leases again, having forgotten its lease, gets its pinned address', async () => {
    // One after the other: sequential allocation gives device 3 the highest address.
    const first: DeviceLease[] = [];
    for (const d of [1, 2, 3]) first.push(await lab.lease(d));
    const clients = await Promise.all(first.map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready', 60_000)));
    // One dhcp-host line per device (dnsmasq(8) --dhcp-host, DHCPv6 form), and dnsmasq read it.
    for (const [i, c] of clients.entries()) await waitForPin(c.id, `id:${first[i]!.duid},[${first[i]!.address}]\n`);
    const dnsmasqLog = () => readFileSync(lab.daemons.dnsmasq.logFile, 'utf8');
    expect(dnsmasqLog()).toContain(`read ${pinOf(clients[0]!.id)}`);

    // Devices 1 and 2 release; device 3 keeps its lease (the highest address: sequential allocation goes on after it).
    await lab.release(1);
    await lab.release(2);
    for (const l of first.slice(0, 2)) await api.waitForClient(l.duid, (c) => c.state === 'gone');

    // Device 1 comes back with no memory of its lease (its DUID kept): the pin gives it its address again.
    await lab.forgetLease(1);
    const again = await lab.lease(1);
    expect(again.duid).toBe(first[0]!.duid);
    expect(again.address).toBe(first[0]!.address);

    // Control: device 2's pin removed (dnsmasq forgets a removed hosts file on SIGHUP); it comes back the same way
    // and gets the next free address, which the orchestrator then pins.
    rmSync(pinOf(clients[1]!.id));
    const pid = Number(readFileSync(join(lab.dir, 'dnsmasq', 'dnsmasq.pid'), 'utf8').trim());
    process.kill(pid, 'SIGHUP');
    await sleep(500);
    await lab.forgetLease(2);
    const moved = await lab.lease(2);
    expect(moved.duid).toBe(first[1]!.duid);
    expect(moved.address).not.toBe(first[1]!.address);
    await waitForPin(clients[1]!.id, `id:${moved.duid},[${moved.address}]\n`);

    // Both have their containers again, each reachable from its device.
    await expectConverged(lab, api, [1, 2, 3].map((device, i) => ({ duid: first[i]!.duid, device })), 'leased again');
  });
});
