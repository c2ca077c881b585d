import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shareCreatedSchema, type KeptList } from '@unionize/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { run, waitFor } from './lab/process.js';
import { CTL_MAIN, VISITOR_FILE, ctlExport, ctlShare, dockerCli as docker, loadAndRead, removeKeptImages } from './support/kept.js';
import { OrchestratorApi } from './support/orchestrator-api.js';

/**
 * Keeping what a visitor made (issue 20): a device writes a file (and 200 MiB
 * of noise) in its container and releases its lease; a `keep = true` profile
 * commits the container to `unionize-kept/CLIENT:TAG` before it goes, the
 * orchestrator records it, and the image holds the file. A device of another
 * profile is not kept. `orchestratorctl export` streams the kept image through
 * the orchestrator from its agent, neither of them holding it (peak RSS), and
 * the other docker engine's `docker load` takes it, file included. A share
 * link (`orchestratorctl share`) serves it once, unsigned, with its length.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

const PROFILES = `
[profiles.visitor]
match_hostname = visitor-*
keep = true
keep_days = 7
keep_max_mb = 2048
`;

const MiB = 1024 ** 2;
const NOISE_MIB = 200;

/** A process's peak resident set (VmHWM), bytes. */
const peakRss = (pid: number) => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

describe.skipIf(skipReason)('keep: a released device’s container becomes an image holding what it wrote', () => {
  let lab: Lab;
  let api: OrchestratorApi;
  let work: string;
  /** What the first test left for the next: the visitor's client, its kept image, and the file's content. */
  let visitorId: string;
  let keptImage: string;
  let keptAgent: string;
  let secret: string;

  beforeAll(async () => {
    lab = await startLab({ devices: 2, hostnames: ['visitor-1', 'plain-1'], orchestratorExtraIni: PROFILES, dockerHosts: 2, shares: true });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
    work = mkdtempSync(join(tmpdir(), 'keep-export-'));
  }, 240_000);

  afterAll(async () => {
    await api?.close();
    if (work) rmSync(work, { recursive: true, force: true });
    if (lab) {
      // The lab's data roots outlive it: its kept images go.
      for (const host of lab.dockerHosts) await removeKeptImages(host);
      await lab.stop();
    }
  });

  const hostOf = (agent: string) => lab.dockerHosts.find((h) => h.agent === agent)!;

  it('a live container exports as it is; release → committed, recorded with client, hostname and profile → the image has the file; the other device is not kept', async () => {
    const [visitor, plain] = await Promise.all([lab.lease(1), lab.lease(2)]);
    const [v, p] = await Promise.all([visitor, plain].map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready', 60_000)));
    expect([v!.profile, p!.profile]).toEqual(['visitor', null]);

    secret = randomBytes(16).toString('hex');
    const host = hostOf(v!.instance!.agent);
    const script = `echo ${secret} > ${VISITOR_FILE} && head -c ${NOISE_MIB * MiB} /dev/urandom > /noise.bin`;
    const wrote = await docker(host, 'exec', v!.instance!.containerName, 'sh', '-c', script);
    expect(wrote.code, wrote.stderr).toBe(0);

    // A live container exports as it is now (the plain device: not kept, but exportable), from a
    // temporary image its agent removes once the download ends; the other engine loads it.
    const plainHost = hostOf(p!.instance!.agent);
    expect((await docker(plainHost, 'exec', p!.instance!.containerName, 'sh', '-c', `echo live-${secret} > ${VISITOR_FILE}`)).code).toBe(0);
    const liveFile = join(work, 'live.tar.gz');
    const live = await ctlExport(lab, p!.id, liveFile);
    expect(live.code, live.stderr).toBe(0);
    const exportImages = async () => (await docker(plainHost, 'images', '--filter', 'reference=unionize-export/*', '--format', '{{.Repository}}:{{.Tag}}')).stdout.trim();
    const [liveImage] = /unionize-export\/[a-z0-9._-]+:\d+/.exec((await docker(lab.dockerHosts.find((h) => h !== plainHost)!, 'load', '-i', liveFile)).stdout) ?? [];
    expect(liveImage).toBeDefined();
    const liveRead = await docker(lab.dockerHosts.find((h) => h !== plainHost)!, 'run', '--rm', '--network', 'none', liveImage!, 'cat', VISITOR_FILE);
    expect(liveRead.stdout.trim()).toBe(`live-${secret}`);
    await docker(lab.dockerHosts.find((h) => h !== plainHost)!, 'rmi', liveImage!);
    while ((await exportImages()) !== '') await new Promise((r) => setTimeout(r, 200));

    await Promise.all([lab.release(1), lab.release(2)]);
    await Promise.all([visitor, plain].map((l) => api.waitForClient(l.duid, (c) => c.state === 'gone' && c.instance === null, 60_000)));

    const { kept } = await api.get<KeptList>('/v1/kept');
    expect(kept).toHaveLength(1);
    const [image] = kept;
    expect(image).toMatchObject({ clientId: v!.id, agent: host.agent, hostname: 'visitor-1', profile: 'visitor' });
    expect(image!.image).toMatch(new RegExp(`^unionize-kept/${v!.id}:\\d{8}T\\d{9}Z$`));
    expect(image!.sizeBytes).toBeGreaterThan(0);
    expect(Date.parse(image!.expiresAt!) - Date.parse(image!.createdAt)).toBeGreaterThan(6 * 86_400_000);

    const inspected = JSON.parse((await docker(host, 'image', 'inspect', image!.image)).stdout)[0];
    expect(inspected.Id).toBe(`sha256:${image!.imageId}`);
    expect(inspected.Config.Labels).toMatchObject({
      'io.unionize.kept': 'true', 'io.unionize.kept.client': v!.id, 'io.unionize.kept.hostname': 'visitor-1', 'io.unionize.kept.profile': 'visitor',
    });
    // Its containers are gone: the kept image runs nowhere.
    const running = await docker(host, 'ps', '-a', '--filter', `ancestor=${image!.image}`, '--format', '{{.Names}}');
    expect(running.stdout.trim()).toBe('');
    const read = await docker(host, 'run', '--rm', '--network', 'none', image!.image, 'cat', VISITOR_FILE);
    expect(read.stdout.trim()).toBe(secret);

    // The device of the plain profile left nothing behind.
    const others = await docker(host, 'images', '--filter', `reference=unionize-kept/${p!.id}`, '--format', '{{.ID}}');
    const others2 = await docker(lab.dockerHosts.find((h) => h !== host)!, 'images', '--filter', 'label=io.unionize.kept=true', '--format', '{{.Repository}}');
    expect(others.stdout.trim() + others2.stdout.trim()).toBe('');
    [visitorId, keptImage, keptAgent] = [v!.id, image!.image, host.agent];
  }, 300_000);

  it(`orchestratorctl export streams the kept image (over ${NOISE_MIB} MiB) through the orchestrator from its agent, neither holding it; the other engine loads it, file included`, async () => {
    expect(keptImage).toBeDefined();
    const orchestratorPid = lab.daemons.orchestrator!.pid!;
    const agentPid = (keptAgent === 'dock1' ? lab.daemons.unionize : lab.daemons.unionize2)!.pid!;
    const before = { orchestrator: peakRss(orchestratorPid), agent: peakRss(agentPid) };

    const file = join(work, 'visitor.tar.gz');
    const exported = await ctlExport(lab, visitorId, file);
    expect(exported.code, exported.stderr).toBe(0);
    const bytes = statSync(file).size;
    expect(JSON.parse(exported.stdout)).toEqual({ clientId: visitorId, file, bytes });
    expect(bytes).toBeGreaterThan(NOISE_MIB * MiB);

    // Streamed: neither daemon's peak resident set grew by a fraction of what went through.
    const growth = { orchestrator: peakRss(orchestratorPid) - before.orchestrator, agent: peakRss(agentPid) - before.agent };
    console.log(`export: ${bytes} bytes; peak RSS growth: orchestrator ${growth.orchestrator} B, agent ${growth.agent} B`);
    expect(growth.orchestrator).toBeLessThan(48 * MiB);
    expect(growth.agent).toBeLessThan(48 * MiB);

    // The other engine, which never had it, loads it under its name; its container has the file.
    const other = lab.dockerHosts.find((h) => h.agent !== keptAgent)!;
    const { loaded, read } = await loadAndRead(other, file, keptImage);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stdout).toContain(keptImage);
    expect(read.stdout.trim()).toBe(secret);
  }, 600_000);

  it('a share link serves the kept image once, unsigned, with its type and length; the other engine loads it, file included; a second try is refused', async () => {
    expect(keptImage).toBeDefined();
    const made = await ctlShare(lab, visitorId, '1d');
    expect(made.code, made.stderr).toBe(0);
    const link = shareCreatedSchema.parse(JSON.parse(made.stdout));
    expect(link.url.startsWith(`${lab.orchestratorUrl}/shared/`)).toBe(true);
    expect(link.sizeBytes).toBeGreaterThan(NOISE_MIB * MiB);
    // As a visitor's browser fetches it: plain HTTPS (the lab's CA), no key, from the orchestrator's namespace's neighbour.
    const file = join(work, 'shared.tar.gz');
    const path = new URL(link.url).pathname;
    const url = `${lab.orchestratorUrl}${path}`;
    const first = await run(['curl', '-sS', '-g', '--noproxy', '*', '--cacert', lab.caFile, '-o', file, '-D', '-', '-w', '%{http_code}', url], { timeoutMs: 600_000 });
    expect(first.stdout.trim().split('\n').at(-1)).toBe('200');
    expect(first.stdout).toMatch(/content-type: application\/gzip/i);
    expect(first.stdout).toContain(`content-length: ${link.sizeBytes}`);
    expect(statSync(file).size).toBe(link.sizeBytes);
    const other = lab.dockerHosts.find((h) => h.agent !== keptAgent)!;
    await docker(other, 'rmi', '--force', keptImage);
    const { loaded, read } = await loadAndRead(other, file, keptImage);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(read.stdout.trim()).toBe(secret);
    const second = await run(['curl', '-sS', '-g', '--noproxy', '*', '--cacert', lab.caFile, '-o', '/dev/null', '-w', '%{http_code}', url], { timeoutMs: 60_000 });
    expect(second.stdout.trim()).toBe('410');
  }, 600_000);

  it('orchestratorctl restore makes the device’s container again from its kept image, file included, once it leases again', async () => {
    expect(keptImage).toBeDefined();
    const visitor = lab.devices.findIndex((d) => d.hostname === 'visitor-1') + 1;
    const lease = await lab.lease(visitor);
    const fresh = await api.waitForClient(lease.duid, (c) => c.state === 'ready' && c.instance !== null, 60_000);
    expect(fresh.id).toBe(visitorId);
    const host = () => hostOf(fresh.instance!.agent);
    // A fresh container from the profile's image: no file.
    expect((await docker(host(), 'exec', fresh.instance!.containerName, 'cat', VISITOR_FILE)).code).not.toBe(0);
    const restored = await run([process.execPath, CTL_MAIN, '--config', lab.orchestratorIniFile, '--url', lab.orchestratorUrl, '--json', 'restore', visitorId], { timeoutMs: 60_000 });
    expect(restored.code, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toEqual({ clientId: visitorId, image: keptImage, queued: true });
    // Ready again, on the kept image's agent, in a container made from that image.
    const back = await waitFor('the restored container', async () => {
      const client = await api.waitForClient(lease.duid, (c) => c.state === 'ready' && c.instance?.agent === keptAgent, 60_000);
      const image = (await docker(hostOf(keptAgent), 'inspect', '--format', '{{.Config.Image}}', client.instance!.containerName)).stdout.trim();
      return image === keptImage ? client : undefined;
    }, { timeoutMs: 60_000 });
    const read = await docker(hostOf(keptAgent), 'exec', back.instance!.containerName, 'cat', VISITOR_FILE);
    expect(read.stdout.trim()).toBe(secret);
    // The device reaches its restored container.
    expect(await lab.ping(visitor, back.instance!.address.split('/')[0]!)).toBe(true);
  }, 300_000);
});
