import type { EventOutcomeKind } from '@unionize/protocol';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { readDnsmasqLeases } from './lab/dnsmasq.js';
import { sleep } from './lab/process.js';
import { expectReachable, managedContainers } from './support/converged.js';
import { OrchestratorApi, type ClientView } from './support/orchestrator-api.js';

/**
 * Profiles chosen by the hostname a device sends: each gives its own image,
 * command, environment and limits, as `docker inspect` shows them. A profile
 * with a TTL removes the container while the lease lives; renewals during the
 * cool-down bring nothing, the first one after it a new container.
 */
const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

const MiB = 1024 ** 2;
const TTL_SECONDS = 5;
const COOLDOWN_SECONDS = 15;
const SMALL_IMAGE = 'unionize-client:small';

const PROFILES = `
[profiles.big]
match_hostname = big-*
image = unionize-client:latest
memory = 128m
cpus = 1.5
env[] = SIZE=big

[profiles.small]
match_hostname = small-*
image = ${SMALL_IMAGE}
command = ["/bin/sh","/init.sh"]
memory = 48m
cpus = 0.5
env[] = SIZE=small
env[] = GREETING=hello small

[profiles.ephemeral]
match_hostname = eph-*
memory = 32m
ttl_seconds = ${TTL_SECONDS}
cooldown_seconds = ${COOLDOWN_SECONDS}
`;

describe.skipIf(skipReason)('profiles by hostname, and a TTL with its cool-down', () => {
  let lab: Lab;
  let api: OrchestratorApi;

  beforeAll(async () => {
    lab = await startLab({
      devices: 4,
      hostnames: ['big-1', 'small-1', 'eph-1', 'plain-1'],
      orchestratorExtraIni: PROFILES,
      // The TTL is seen within a second of running out.
      reconcileSeconds: 1,
    });
    // The second image: the client image under another name.
    await lab.docker.getImage('unionize-client:latest').tag({ repo: 'unionize-client', tag: 'small' });
    api = new OrchestratorApi({ url: lab.orchestratorUrl, caFile: lab.caFile, keysDir: lab.keysDir });
  });

  afterAll(async () => {
    await api?.close();
    if (lab) {
      await lab.docker.getImage(SMALL_IMAGE).remove({ noprune: true }).catch(() => undefined);
      await lab.stop();
    }
  });

  const inspect = (client: ClientView): Promise<Docker.ContainerInspectInfo> => lab.docker.getContainer(client.instance!.containerId).inspect();
  const env = (info: Docker.ContainerInspectInfo) => Object.fromEntries(info.Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

  it('two profiles chosen by hostname give different images, commands and limits; others get the default', async () => {
    const devices = [1, 2, 4];
    const leases = await Promise.all(devices.map((d) => lab.lease(d)));
    const [big, small, plain] = await Promise.all(leases.map((l) => api.waitForClient(l.duid, (c) => c.state === 'ready', 60_000)));
    expect([big!.profile, small!.profile, plain!.profile]).toEqual(['big', 'small', null]);

    const [b, s, p] = await Promise.all([big!, small!, plain!].map(inspect));
    expect(b!.Config.Image).toBe('unionize-client:latest');
    expect(b!.HostConfig).toMatchObject({ Memory: 128 * MiB, NanoCpus: 1_500_000_000 });
    expect(b!.Config.Cmd).toEqual(['/init.sh']);
    expect(env(b!)).toMatchObject({ SIZE: 'big', PROFILE: 'big', DEVICE_HOSTNAME: 'big-1' });

    expect(s!.Config.Image).toBe(SMALL_IMAGE);
    expect(s!.HostConfig).toMatchObject({ Memory: 48 * MiB, NanoCpus: 500_000_000 });
    expect(s!.Config.Cmd).toEqual(['/bin/sh', '/init.sh']);
    expect(env(s!)).toMatchObject({ SIZE: 'small', GREETING: 'hello small', PROFILE: 'small' });
    expect(s!.Config.Labels['io.unionize.profile']).toBe('small');

    expect(p!.Config.Image).toBe('unionize-client:latest');
    expect(p!.HostConfig).toMatchObject({ Memory: 0, NanoCpus: 0 });
    expect(env(p!)).toMatchObject({ PROFILE: 'default' });
    expect(env(p!).SIZE).toBeUndefined();

    // The limits are the running containers' own: each serves its device's page.
    await expectReachable(lab, leases.map((l, i) => ({ duid: l.duid, device: devices[i]! })), [big!, small!, plain!], 'profiles');
  });

  it(`a ${TTL_SECONDS} s TTL removes the container while the lease lives; the ${COOLDOWN_SECONDS} s cool-down holds; a renewal after it brings a new one`, async () => {
    const device = 3;
    const lease = await lab.lease(device);
    const first = await api.waitForClient(lease.duid, (c) => c.state === 'ready', 60_000);
    expect(first.profile).toBe('ephemeral');
    expect((await inspect(first)).HostConfig.Memory).toBe(32 * MiB);
    const ttlExpiresAt = Date.parse(first.ttlExpiresAt!);
    expect(ttlExpiresAt - Date.parse(first.instance!.createdAt)).toBeGreaterThanOrEqual(TTL_SECONDS * 1000 - 1000);

    // The TTL runs out: the container goes, though neither a release nor an expiry came.
    const expired = await api.waitForClient(lease.duid, (c) => c.state === 'gone', 30_000);
    const goneAt = Date.now();
    expect(goneAt).toBeGreaterThanOrEqual(ttlExpiresAt);
    expect(expired.stateReason).toMatch(/^TTL ran out/);
    expect(expired.instance).toBeNull();
    expect(Date.parse(expired.expiresAt!)).toBeGreaterThan(goneAt);
    expect(readDnsmasqLeases(lab.dnsmasqLeaseFile).some((l) => l.duid === lease.duid && l.expires * 1000 > goneAt)).toBe(true);
    expect((await managedContainers(lab)).filter((c) => c.Id === first.instance!.containerId)).toEqual([]);
    const cooldownUntil = Date.parse(expired.cooldownUntil!);
    expect(cooldownUntil - goneAt).toBeGreaterThan((COOLDOWN_SECONDS - 3) * 1000);

    // A renewal during the cool-down: the device asks again (it forgot its lease, kept its DUID),
    // dnsmasq renews the lease it holds and the hook reports `old`; no container.
    const renewal = await renew(device, lease.duid, first.id);
    expect(Date.now()).toBeLessThan(cooldownUntil);
    expect(renewal).toMatchObject({ outcomeKind: 'cooling', outcome: `cooling down until ${expired.cooldownUntil} after its TTL ran out` });
    await sleep(3000);
    const cooling = await api.get<ClientView>(`/v1/clients/${first.id}`);
    expect(cooling).toMatchObject({ state: 'gone', desired: 'removed', instance: null });
    expect((await managedContainers(lab)).filter((c) => c.Labels['io.unionize.client-id'] === first.id)).toEqual([]);

    // The cool-down ends: still nothing until the lease is renewed.
    await sleep(Math.max(0, cooldownUntil - Date.now()) + 2500);
    expect((await api.get<ClientView>(`/v1/clients/${first.id}`)).state).toBe('gone');
    const renewedAt = Date.now();
    const after = await renew(device, lease.duid, first.id, renewal.eventId);
    expect(after).toMatchObject({ outcomeKind: 'provisioned', outcome: 'provisioned' });
    const second = await api.waitForClient(lease.duid, (c) => c.state === 'ready' && c.instance !== null, 30_000);
    expect(second.instance!.containerId).not.toBe(first.instance!.containerId);
    expect(Date.parse(second.ttlExpiresAt!)).toBeGreaterThan(renewedAt);
    const [container] = (await managedContainers(lab)).filter((c) => c.Id === second.instance!.containerId);
    expect(container?.State).toBe('running');
  }, 120_000);

  /** Renew the device's lease through dnsmasq and wait for the `old` event the hook reports; returns it. */
  async function renew(device: number, duid: string, clientId: string, after?: string) {
    await lab.forgetLease(device);
    const again = await lab.lease(device);
    expect(again.duid).toBe(duid);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { events } = await api.get<{ events: Array<{ eventId: string; clientId: string; action: string; appliedAt: string | null; outcome: string | null; outcomeKind: EventOutcomeKind | null }> }>(
        '/v1/events?limit=50',
      );
      const old = events.find((e) => e.clientId === clientId && e.action === 'old' && e.appliedAt !== null && e.eventId !== after);
      if (old) return old;
      if (Date.now() > deadline) throw new Error(`no applied renewal (old) for ${duid} within 20 s: ${JSON.stringify(events.slice(0, 5))}`);
      await sleep(100);
    }
  }
});
