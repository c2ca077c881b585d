import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { banAddedSchema, banListSchema } from '@unionize/protocol';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { waitFor } from './lab/process.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * Bans against real dnsmasq and dockerd: a banned device's container goes at
 * once, the orchestrator writes an ignore entry (`id:DUID,ignore`) beside the
 * pins in the device dnsmasq's dhcp-hostsdir, and that dnsmasq then ignores
 * the device's Solicit (no lease) while it still answers the others.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('bans', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({ devices: 2, pinning: true });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    await lab?.stop();
  });

  const containersOf = async (duid: string) => lab.docker.listContainers({ all: true, filters: { label: [`io.unionize.duid=${duid}`] } });
  const dnsmasqLog = () => readFileSync(lab.daemons.dnsmasq.logFile, 'utf8');

  it("removes a banned device's container, and dnsmasq answers its next Solicit with nothing", async () => {
    const banned = await lab.lease(1);
    const other = await lab.lease(2);
    const client = await api.waitForClient(banned.duid, (c) => c.state === 'ready', 60_000);
    await api.waitForClient(other.duid, (c) => c.state === 'ready', 60_000);
    expect(await containersOf(banned.duid)).toHaveLength(1);
    await waitFor('the device is pinned', () => existsSync(join(lab.pinDir!, client.id)) || undefined, { timeoutMs: 15_000 });

    const { status, json } = await api.call('POST', '/v1/bans', { body: JSON.stringify({ target: banned.duid }) });
    expect(status).toBe(201);
    expect(banAddedSchema.parse(json)).toMatchObject({ ban: { target: banned.duid, kind: 'duid', until: null }, removing: 1 });
    expect(banListSchema.parse(await api.get('/v1/bans')).bans.map((b) => b.target)).toEqual([banned.duid]);

    // Its container goes at once; its pin is released and an ignore entry takes its place, which dnsmasq reads.
    await api.waitForClient(banned.duid, (c) => c.state === 'gone' && c.instance === null && c.stateReason === `banned: DUID ${banned.duid}`);
    expect(await containersOf(banned.duid)).toEqual([]);
    const files = () => readdirSync(lab.pinDir!).map((name): [string, string] => [name, readFileSync(join(lab.pinDir!, name), 'utf8')]);
    const ban = files().find(([, line]) => line === `id:${banned.duid},ignore\n`);
    expect(ban, JSON.stringify(files())).toBeDefined();
    expect(existsSync(join(lab.pinDir!, client.id))).toBe(false);
    await waitFor('dnsmasq read the ignore entry', () => dnsmasqLog().includes(`read ${join(lab.pinDir!, ban![0])}`) || undefined, { timeoutMs: 15_000 });

    // The device asks afresh: no Advertise, so no lease. The other device still gets its lease.
    await lab.forgetLease(1);
    const solicitsBefore = dnsmasqLog().split('\n').filter((l) => l.includes('DHCPSOLICIT') && l.includes(banned.duid)).length;
    await expect(lab.lease(1, { timeoutMs: 8_000 })).rejects.toThrow();
    const solicits = dnsmasqLog().split('\n').filter((l) => l.includes('DHCPSOLICIT') && l.includes(banned.duid));
    expect(solicits.length).toBeGreaterThan(solicitsBefore);
    expect(solicits.at(-1)).toMatch(/ignored/);
    await lab.forgetLease(2);
    expect((await lab.lease(2)).duid).toBe(other.duid);
    expect(await containersOf(banned.duid)).toEqual([]);

    // Unbanned: the ignore entry goes, and the orchestrator asks for a reload ([pinning] reload_file, which the
    // lab watches as the dnsmasq-devnet-reload.path unit does on a host: SIGHUP), so dnsmasq forgets it.
    const reads = () => dnsmasqLog().split(`read ${lab.pinDir!}/`).length;
    const readsBefore = reads();
    const lifted = await api.call('DELETE', `/v1/bans/${banned.duid}`);
    expect(lifted.status).toBe(200);
    expect(files().filter(([, line]) => line.includes('ignore'))).toEqual([]);
    await waitFor('dnsmasq re-read its hostsdir', () => reads() > readsBefore || undefined, { timeoutMs: 30_000 });
    const again = await lab.lease(1);
    expect(again.duid).toBe(banned.duid);
    await api.waitForClient(banned.duid, (c) => c.state === 'ready', 60_000);
    expect(await containersOf(banned.duid)).toHaveLength(1);
  });
});
