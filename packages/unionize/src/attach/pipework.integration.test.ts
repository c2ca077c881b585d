import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerEngineClient } from '../docker/docker-client.js';
import { expandIpv6 } from '../net/ipv6.js';
import { readNetnsState } from './netns-state.js';
import { PipeworkAttacher } from './pipework.js';

/**
 * The pipework backend with the real script, when one is on PATH (it is not
 * packaged by Debian, and the tests download nothing). Without one, a single
 * test says so; pipework.test.ts checks the exact argv with a stand-in.
 */
const env = process.env;
const socket = env.UNIONIZE_TEST_DOCKER_SOCKET;
const image = env.UNIONIZE_TEST_IMAGE ?? 'ua-test:latest';
const bridge = env.UNIONIZE_TEST_BRIDGE ?? 'br-ctr';
const gateway = env.UNIONIZE_TEST_GATEWAY ?? 'fd00:3::1';

function onPath(program: string): string | undefined {
  for (const dir of (env.PATH ?? '').split(':').filter(Boolean)) {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return join(dir, program);
    } catch {
      /* next */
    }
  }
  return undefined;
}

const pipework = onPath('pipework');
const ready = pipework !== undefined && socket !== undefined && process.getuid?.() === 0;

if (!ready) {
  it('has no pipework script on PATH (or no docker socket): the real-script case needs one, and pipework is not in Debian', () => {
    console.warn('pipework.integration: no pipework on PATH; the real-script case did not run (pipework.test.ts covers the argv)');
    expect(ready).toBe(false);
  });
} else {
  describe('pipework backend with the real script', () => {
    const docker = new DockerEngineClient({ socketPath: socket! });
    const name = `ua-pw-${process.pid}`;
    const mac = '02:00:00:00:ad:01';
    const prefix64 = expandIpv6(gateway).slice(0, 16).match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
    const address = `${prefix64}::ad/64`;
    const attacher = new PipeworkAttacher({ pipework: pipework!, bridge, gateway, env: { DOCKER_HOST: `unix://${socket}` } });
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
}
