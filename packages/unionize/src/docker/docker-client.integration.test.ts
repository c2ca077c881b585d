import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { NativeAttacher } from '../attach/native.js';
import { hostVethName } from '../attach/plan.js';
import { readLinks } from '../attach/netns-state.js';
import { DockerEngineClient, OWN_LABELS } from './docker-client.js';
import { integrationEnv, integrationSkipReason } from '../testing/integration-env.js';

/**
 * The real thing: a dockerd, `ip` and `nsenter`, run by hand as root inside a
 * test network namespace that holds the bridge, e.g.
 *
 *   ip netns add ua-test; ip -n ua-test link add br-ctr type bridge
 *   ip -n ua-test link set br-ctr up; ip -n ua-test addr add fd00:3::1/64 dev br-ctr nodad
 *   UNIONIZE_TEST_DOCKER_SOCKET=/tmp/ua-docker/docker.sock \
 *     ip netns exec ua-test npx vitest run --project unit packages/unionize/src/docker
 *
 * Optional: UNIONIZE_TEST_IMAGE (ua-test:latest, any image whose command keeps
 * running), UNIONIZE_TEST_BRIDGE (br-ctr), UNIONIZE_TEST_GATEWAY (fd00:3::1),
 * UNIONIZE_TEST_ADDRESS (fd00:3::ab/64).
 */


const { socket, image, bridge, gateway, address } = integrationEnv;
const skip = integrationSkipReason();

describe.skipIf(skip !== null)(`docker client + native attach (real dockerd)${skip ? `: skipped, ${skip}` : ''}`, () => {
  const docker = new DockerEngineClient({ socketPath: socket ?? '' });
  const attacher = new NativeAttacher({ bridge, gateway });
  const name = `ua-it-${process.pid}`;
  const mac = '02:00:00:00:ab:01';
  let id = '';

  afterAll(async () => {
    if (id) await docker.remove(id);
    await attacher.detach(name);
  });

  it('checks the host: tools present, bridge is a bridge', async () => {
    await attacher.preflight();
    await docker.ping();
  });

  it('creates a container with no network, the IPv6 sysctls and its labels, and starts it', async () => {
    id = await docker.create({ name, image, labels: { 'io.unionize.client-id': 'it' }, env: { CLIENT_ID: 'it' }, mac, address });
    const created = await docker.inspectByName(name);
    expect(created).toMatchObject({ id, name, image, state: 'created', pid: 0 });
    // The image may carry labels of its own; ours must all be there.
    expect(created?.labels).toMatchObject({
      'io.unionize.client-id': 'it',
      [OWN_LABELS.managed]: 'true',
      [OWN_LABELS.address]: address,
      [OWN_LABELS.mac]: mac,
    });
    await docker.start(id);
    await docker.start(id); // already running: not an error
    const running = await docker.inspectByName(name);
    expect(running?.state).toBe('running');
    expect(running?.pid).toBeGreaterThan(0);
    expect((await docker.listManaged()).map((c) => c.name)).toContain(name);
  });

  it('matches names exactly, not as id prefixes', async () => {
    expect(await docker.inspectByName(id.slice(0, 12))).toBeNull();
    expect(await docker.inspectByName(`${name}-nope`)).toBeNull();
  });

  it('attaches eth1 reachably, then finds nothing to do', async () => {
    const info = await docker.inspectByName(name);
    const target = { name, pid: info?.pid ?? 0, mac, address };
    expect(await attacher.isAttached(target)).toBe(false);
    const first = await attacher.attach(target);
    expect(first).toMatchObject({ changed: true, spawns: 2 });
    expect(await attacher.isAttached(target)).toBe(true);
    expect(await attacher.attach(target)).toMatchObject({ changed: false, spawns: 0 });
    // From the bridge's namespace (ours) to the container's eth1, no DAD wait thanks to nodad.
    execFileSync('ping', ['-6', '-c', '1', '-W', '2', address.split('/')[0] ?? ''], { stdio: 'pipe' });
    const link = execFileSync('nsenter', ['-t', String(target.pid), '-n', 'ip', '-j', 'link', 'show', 'dev', 'eth1'], { encoding: 'utf8' });
    expect((JSON.parse(link) as Array<{ address: string }>)[0]?.address).toBe(mac);
  });

  it('removes the container and the host end of its veth', async () => {
    expect(await docker.remove(id)).toBe(true);
    await attacher.detach(name);
    expect((await readLinks('/proc/self/net')).has(hostVethName(name))).toBe(false);
    expect(await docker.remove(id)).toBe(false);
    expect(await docker.inspectByName(name)).toBeNull();
    id = '';
  });
});
