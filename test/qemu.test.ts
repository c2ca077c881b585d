import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuSkipReason, startLab, type Lab } from './lab/lab.js';
import { ensureVmImage } from './lab/vm-image.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * A real Linux VM as the device: QEMU (TCG) on the device bridge through a
 * tap, dhcpcd in its initramfs takes the DHCPv6 lease, and the VM itself
 * fetches its container's page over IPv6. Power-off sends a DHCPv6 Release,
 * and the container goes.
 */
const skipReason = qemuSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('a QEMU VM on the device bridge gets its own container', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    // The first build downloads a kernel and three small packages: outside the test's own time.
    await ensureVmImage();
    lab = await startLab({ devices: 0 });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  it('boot → lease → the VM fetches its page naming its DUID → release on power-off → container gone', async () => {
    const vm = await lab.startVm();
    const lease = await vm.lease(60_000);
    expect(lease.duid).toBe(vm.expectedDuid);
    expect(lease.mac).toBe(vm.mac);
    expect(lease.address.startsWith(`${lab.prefix}:1::`)).toBe(true);

    const client = await api.waitForClient(lease.duid, (c) => c.state === 'ready', 60_000);
    expect(client).toMatchObject({ address: lease.address, hostname: 'lab-vm-1' });
    const instance = client.instance!;
    const containerAddress = instance.address.split('/')[0]!;

    const page = await vm.fetch(`http://[${containerAddress}]/`, 30_000);
    expect(page.rc).toBe(0);
    expect(page.body).toContain(lease.duid);
    expect(page.body).toContain('lab-vm-1');

    expect(await vm.poweroff()).toEqual({ released: true });
    expect(vm.running).toBe(false);
    await api.waitForClient(lease.duid, (c) => c.state === 'gone' && c.instance === null, 30_000);
    const left = await lab.docker.listContainers({ all: true, filters: { name: [instance.containerName] } });
    expect(left.filter((c) => c.Names.includes(`/${instance.containerName}`))).toEqual([]);
    console.info(`qemu: lease ${vm.timings.lease} ms, page ${vm.timings.page} ms after start (${vm.options.accel})`);
  });
});
