import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { findTool } from './lab/prereqs.js';
import { repoRoot } from './lab/repo.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * The pipework attach backend end to end (issue 17, point 5): unionize with
 * `[network] attach = pipework` and the repository's unchanged upstream
 * script (third_party/pipework/pipework), behind the real dhclient, dnsmasq,
 * hook, orchestrator and dockerd: the device leases, its container is
 * attached by pipework, and the device reaches it over ICMPv6 and HTTP.
 * pipework finds the container with the docker CLI (Debian package docker.io).
 */
const skipReason = labSkipReason({ daemons: true, hook: true }) ?? (findTool('docker') ? null : 'pipework needs the docker CLI (Debian package docker.io)');
if (skipReason && process.env.CI === 'true') throw new Error(`CI=true and the pipework e2e cannot run: ${skipReason}`);
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('a device reaches a container attached by the real pipework', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 1, attach: 'pipework' });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  it('unionize runs with attach = pipework and the upstream script', () => {
    const starting = readFileSync(join(lab.logDir, 'unionize.log'), 'utf8').split('\n').find((l) => l.includes('"msg":"starting"'));
    expect(starting).toBeDefined();
    const network = (JSON.parse(starting!) as { config: { network: { attach: string; pipework?: string } } }).config.network;
    expect(network).toMatchObject({ attach: 'pipework', pipework: join(repoRoot(), 'third_party', 'pipework', 'pipework') });
  });

  it('lease → container attached by pipework → device pings it and gets its page → release → gone', async () => {
    const lease = await lab.lease(1);
    const client = await api.waitForClient(lease.duid, (c) => c.state === 'ready');
    const instance = client.instance!;
    const containerAddress = instance.address.split('/')[0]!;
    expect(containerAddress.startsWith(`${lab.prefix}:3:`)).toBe(true);

    expect(await lab.ping(1, containerAddress)).toBe(true);
    const page = await lab.httpGet(1, `http://[${containerAddress}]/`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(lease.duid);

    await lab.release(1);
    await api.waitForClient(lease.duid, (c) => c.state === 'gone' && c.instance === null);
    expect(await lab.ping(1, containerAddress)).toBe(false);
  });
});
