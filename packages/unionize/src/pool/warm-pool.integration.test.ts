import type { CreateContainerRequest, PoolSpec } from '@unionize/protocol';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { NativeAttacher } from '../attach/native.js';
import { Provisioner } from '../api/provisioner.js';
import { DockerEngineClient, OWN_LABELS } from '../docker/docker-client.js';
import { integrationEnv, integrationSkipReason } from '../testing/integration-env.js';
import { CLAIM_LABEL, WarmPool } from './warm-pool.js';

/**
 * Warm pools against a real dockerd (run as the other integration tests are:
 * see docker/docker-client.integration.test.ts): a member claimed, renamed,
 * attached and told its device; the pool refilled; a second process (a
 * restart) adopting the claim and taking the member back; a request that
 * finds the pool dry made cold.
 */

const { socket, image, bridge, gateway, address: baseAddress } = integrationEnv;
const skip = integrationSkipReason();
const log = pino({ level: 'silent' });

describe.skipIf(skip !== null)(`warm pool (real dockerd)${skip ? `: skipped, ${skip}` : ''}`, () => {
  const docker = new DockerEngineClient({ socketPath: socket ?? '' });
  const attacher = new NativeAttacher({ bridge, gateway });
  const pool = `it-${process.pid}`;
  const spec: PoolSpec = { name: pool, size: 1, image, env: { GREETING: 'hello' } };
  // Beside the other integration tests' address (they run at the same time), on the same prefix.
  const addressOf = (last: string) => baseAddress.replace(/::[0-9a-f]+\//, `::${last}/`);
  const request = (n: number): CreateContainerRequest => ({
    name: `ua-pool-${process.pid}-${n}`, image, pool, mac: `02:00:00:00:ac:0${n}`, address: addressOf(`ac${n}`),
    labels: { 'io.unionize.client-id': `client-${n}` },
    env: { GREETING: 'hello', DEVICE_DUID: `00:03:00:01:00:00:00:0${n}`, DEVICE_HOSTNAME: `pooled-${n}` },
  });
  let busy = 0;
  const made = (): WarmPool => new WarmPool({ docker, log, maxMembers: 4, busy: () => busy, retryMs: 200 });
  let first = made();

  afterAll(async () => {
    for (const c of await docker.listManaged()) {
      if (c.labels[OWN_LABELS.pool] === pool || c.name.startsWith(`ua-pool-${process.pid}-`)) {
        await docker.remove(c.id);
        await docker.removeVolume(`unionize-claim-${c.id}`);
        await attacher.detach(c.name).catch(() => undefined);
      }
    }
    docker.close();
  });

  /** The container's page, from this namespace (the bridge's), as a device would fetch it. */
  async function page(cidr: string): Promise<string> {
    const url = `http://[${cidr.split('/')[0]}]/`;
    let last: unknown;
    for (let i = 0; i < 50; i++) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
        if (res.ok) return await res.text();
        last = new Error(`HTTP ${res.status}`);
      } catch (error) {
        last = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${url}: ${String(last)}`);
  }

  it('keeps a member started with no network, claims it for a request, and the page names the device', async () => {
    await first.setSpecs([spec]);
    await first.idle();
    const [member] = (await docker.listManaged()).filter((c) => c.labels[OWN_LABELS.pool] === pool);
    expect(member).toMatchObject({ state: 'running' });
    expect(first.status()[0]).toMatchObject({ name: pool, size: 1, ready: 1 });

    const provisioner = new Provisioner({ docker, attacher, log, pool: first });
    const { view, changed } = await provisioner.ensure(request(1));
    expect(changed).toBe(true);
    expect(view).toMatchObject({ id: member!.id, name: request(1).name, state: 'running', address: request(1).address, mac: request(1).mac });
    expect(view.labels['io.unionize.client-id']).toBe('client-1');
    expect((await docker.inspectVolume(`unionize-claim-${member!.id}`))?.labels[CLAIM_LABEL]).toContain('"client-1"');
    const html = await page(request(1).address);
    expect(html).toContain('device DUID: 00:03:00:01:00:00:00:01');
    expect(html).toContain('This container belongs to device pooled-1');
  });

  it('refills the pool with a new member', async () => {
    await first.idle();
    const members = (await docker.listManaged()).filter((c) => c.labels[OWN_LABELS.pool] === pool && c.name.startsWith('pool-'));
    expect(members).toHaveLength(1);
    expect(members[0]!.state).toBe('running');
    expect(first.status()[0]).toMatchObject({ ready: 1, claims: 1, misses: 0 });
  });

  it('after a restart: the claim adopted by its device (same container, still attached), the member back in its pool', async () => {
    first.stop();
    const second = made();
    await second.restore();
    expect(second.status()[0]).toMatchObject({ name: pool, ready: 1 });
    const provisioner = new Provisioner({ docker, attacher, log, pool: second });
    const listed = await provisioner.list();
    const mine = listed.filter((v) => v.name.startsWith(`ua-pool-${process.pid}-`));
    expect(mine.map((v) => [v.name, v.labels['io.unionize.client-id'], v.address])).toEqual([[request(1).name, 'client-1', request(1).address]]);
    expect(listed.some((v) => v.name.startsWith('pool-'))).toBe(false);
    const again = await provisioner.ensure(request(1));
    expect(again.changed).toBe(false);
    first = second;
  });

  it('a request that finds the pool dry is made cold, and counted as a miss', async () => {
    await first.setSpecs([spec]);
    busy = 1; // no refill while "requests are in progress"
    const provisioner = new Provisioner({ docker, attacher, log, pool: first });
    const claimed = await provisioner.ensure(request(2));
    expect(claimed.view.labels[OWN_LABELS.pool]).toBe(pool);
    const cold = await provisioner.ensure(request(3));
    expect(cold.changed).toBe(true);
    expect(cold.view.labels[OWN_LABELS.pool]).toBeUndefined();
    expect(cold.view.labels['io.unionize.client-id']).toBe('client-3');
    expect(first.status()[0]).toMatchObject({ ready: 0, claims: 1, misses: 1 });
    expect(await page(request(3).address)).toContain('device DUID: 00:03:00:01:00:00:00:03');
    busy = 0;
    await first.idle();
    expect(first.status()[0]).toMatchObject({ ready: 1 });
    first.stop();
  });

  it('a claim whose record went (docker volume prune) is kept at a restart, and its device\'s next request records it again', async () => {
    const info = (await docker.inspectByName(request(1).name))!;
    expect(await docker.removeVolume(`unionize-claim-${info.id}`)).toBe(true);
    const third = made();
    await third.restore();
    expect((await docker.inspectByName(request(1).name))?.id).toBe(info.id);
    const provisioner = new Provisioner({ docker, attacher, log, pool: third });
    const again = await provisioner.ensure(request(1));
    expect(again.view).toMatchObject({ id: info.id, address: request(1).address });
    expect(again.view.labels['io.unionize.client-id']).toBe('client-1');
    expect((await docker.inspectVolume(`unionize-claim-${info.id}`))?.labels[CLAIM_LABEL]).toContain('"client-1"');
    third.stop();
  });

  it('a claimed container removed takes its record with it', async () => {
    const provisioner = new Provisioner({ docker, attacher, log, pool: first });
    const info = await docker.inspectByName(request(2).name);
    expect(await provisioner.remove(request(2).name)).toBe(true);
    expect(await docker.inspectVolume(`unionize-claim-${info!.id}`)).toBeNull();
  });
});
