import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerEngineClient } from '../docker/docker-client.js';
import { expandIpv6 } from '../net/ipv6.js';
import { readNetnsState } from './netns-state.js';
import { PipeworkAttacher } from './pipework.js';
import { integrationEnv } from '../testing/integration-env.js';

/**
 * The pipework backend with the real script, when one is on PATH (it is not
 * packaged by Debian, and the tests download nothing). Without one, a single
 * test says so; pipework.test.ts checks the exact argv with a stand-in.
 */

const { socket, image, bridge, gateway } = integrationEnv;

function onPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
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

// Not on PATH here (pipework is not in Debian, and the tests download nothing): then this suite is
// skipped, the one skip test/unionize-docker.test.ts accepts, and says so in its name.
describe.skipIf(!ready)(`pipework backend with the real script${ready ? '' : ': skipped, no pipework script on PATH (pipework.test.ts checks its argv with a stand-in)'}`, () => {
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
