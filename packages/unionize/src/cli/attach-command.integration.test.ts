import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { NativeAttacher } from '../attach/native.js';
import { readLinks, readNetnsState } from '../attach/netns-state.js';
import { hostVethName } from '../attach/plan.js';
import { DockerEngineClient } from '../docker/docker-client.js';
import { expandIpv6 } from '../net/ipv6.js';
import { runAttachCommand } from './attach-command.js';
import { integrationEnv, integrationSkipReason } from '../testing/integration-env.js';

/**
 * `unionize attach` against a real dockerd, ip and nsenter, with pipework's
 * arguments (static addressing; the dhcp form is in
 * attach/dhcp.integration.test.ts, beside the dnsmasq it needs). Run by
 * test/unionize-docker.test.ts inside the lab's docker-host namespace.
 */


const { socket, image, bridge, gateway } = integrationEnv;
const skip = integrationSkipReason();

/** Another address on the bridge's /64 than the other files use (they run in parallel). */
const prefix64 = expandIpv6(gateway).slice(0, 16).match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
const address = `${prefix64}::ac`;

describe.skipIf(skip !== null)(`unionize attach (real dockerd)${skip ? `: skipped, ${skip}` : ''}`, () => {
  const docker = new DockerEngineClient({ socketPath: socket ?? '' });
  const name = `ua-cli-${process.pid}`;
  const mac = '02:00:00:00:ac:01';
  let id = '';

  afterAll(async () => {
    if (id) await docker.remove(id);
    await new NativeAttacher({ bridge }).detach(name);
  });

  it('attaches a running container by name as pipework would: eth1, MAC, address, default route', async () => {
    id = await docker.create({ name, image, labels: {}, env: {}, mac, address: `${address}/64` });
    await docker.start(id);
    const pid = (await docker.inspectByName(name))!.pid;
    const started = performance.now();
    const status = await runAttachCommand(['--docker-socket', socket!, bridge, '-i', 'eth1', name, `${address}/64@${gateway}`, mac]);
    const ms = Math.round(performance.now() - started);
    expect(status).toBe(0);
    expect(ms).toBeLessThan(2_000);
    const state = await readNetnsState(`/proc/${pid}/net`);
    expect(state.addresses).toContainEqual(expect.objectContaining({ dev: 'eth1', address: expandIpv6(address), prefixLength: 64 }));
    expect(state.defaultRoutes).toContainEqual({ dev: 'eth1', via: expandIpv6(gateway) });
    const link = JSON.parse(execFileSync('nsenter', ['-t', String(pid), '-n', 'ip', '-j', 'link', 'show', 'dev', 'eth1'], { encoding: 'utf8' })) as Array<{ address: string }>;
    expect(link[0]?.address).toBe(mac);
    execFileSync('ping', ['-6', '-c', '1', '-W', '2', address], { stdio: 'pipe' });
    expect((await readLinks('/proc/self/net')).has(hostVethName(name))).toBe(true);
  });

  it('runs again by container id without changing anything, and refuses a stopped container', async () => {
    expect(await runAttachCommand(['--docker-socket', socket!, bridge, id, `${address}/64@${gateway}`, mac])).toBe(0);
    expect(await runAttachCommand(['--docker-socket', socket!, bridge, `${name}-nope`, `${address}/64`])).toBe(1);
  });
});
