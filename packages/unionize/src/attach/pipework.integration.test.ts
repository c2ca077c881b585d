import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerEngineClient } from '../docker/docker-client.js';
import { expandIpv6 } from '../net/ipv6.js';
import { readNetnsState } from './netns-state.js';
import { PipeworkAttacher } from './pipework.js';
import { integrationEnv, integrationSkipReason } from '../testing/integration-env.js';

/**
 * The pipework backend with the real, unchanged upstream script
 * (third_party/pipework/pipework; pipework.test.ts checks the exact argv with a
 * stand-in). It runs where the other integration tests run, and like them may
 * not skip under CI=true.
 */

const { socket, image, bridge, gateway, pipework } = integrationEnv;
const skip = integrationSkipReason();

describe.skipIf(skip)(`pipework backend with the real script${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const docker = new DockerEngineClient({ socketPath: socket! });
  const name = `ua-pw-${process.pid}`;
  const mac = '02:00:00:00:ad:01';
  const prefix64 = expandIpv6(gateway).slice(0, 16).match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
  const address = `${prefix64}::ad/64`;
  const attacher = new PipeworkAttacher({ pipework, bridge, gateway, env: { DOCKER_HOST: `unix://${socket}` } });
  let id = '';

  afterAll(async () => {
    if (id) await docker.remove(id);
    await attacher.detach(name);
  });

  it('attaches eth1 with the address, MAC and IPv6 default route', async () => {
    id = await docker.create({ name, image, labels: {}, env: {}, mac, address });
    await docker.start(id);
    const pid = (await docker.inspectByName(name))!.pid;
    const target = { name, pid, mac, address };
    const result = await attacher.attach(target);
    expect(result.changed).toBe(true);
    expect(await attacher.isAttached(target)).toBe(true);
    const state = await readNetnsState(`/proc/${pid}/net`);
    expect(state.defaultRoutes).toContainEqual({ dev: 'eth1', via: expandIpv6(gateway) });
    execFileSync('ping', ['-6', '-c', '1', '-W', '2', address.split('/')[0]!], { stdio: 'pipe' });
  });
});
