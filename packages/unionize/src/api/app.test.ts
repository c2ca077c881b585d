import { testKey } from '@unionize/protocol/testing/keys';
import { Keyring, RequestVerifier, fixedKeys, signRequest, type ContainerView, DHCP_ADDRESS, isDhcpAddress } from '@unionize/protocol';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AttachResult, AttachTarget, Attacher } from '../attach/native.js';
import { OWN_LABELS, type ContainerInfo, type CreateSpec, type DockerClient } from '../docker/docker-client.js';
import { AttachError, DockerError } from '../errors.js';
import { hostVethName } from '../attach/plan.js';
import { Isolation } from '../isolation/isolation.js';
import { nftAddress } from '../isolation/ruleset.js';
import { createApp } from './app.js';

const ORCHESTRATOR_KEY = testKey('agent-dock1-test');
const REQUEST = {
  name: 'dev-0123456789ab',
  image: 'unionize-client:latest',
  labels: { 'io.unionize.client-id': 'c0ffee' },
  env: { CLIENT_ID: 'c0ffee' },
  mac: '02:AA:BB:CC:DD:EE',
  address: 'fd00:3::100/64',
};

/** Docker in a Map: enough state for create → start → inspect → remove. */
class FakeDocker implements DockerClient {
  containers = new Map<string, ContainerInfo>();
  calls: string[] = [];
  nextPid = 1000;
  fail: Partial<Record<'create' | 'start' | 'ping', Error>> = {};
  /** Simulate a container whose command exits at once. */
  exitOnStart = false;

  async ping() {
    if (this.fail.ping) throw this.fail.ping;
  }
  async inspectByName(name: string) {
    this.calls.push(`inspect ${name}`);
    const info = this.containers.get(name);
    return info ? { ...info } : null;
  }
  async create(spec: CreateSpec) {
    this.calls.push(`create ${spec.name}`);
    if (this.fail.create) throw this.fail.create;
    const labels = { ...spec.labels, [OWN_LABELS.managed]: 'true', [OWN_LABELS.address]: spec.address, [OWN_LABELS.mac]: spec.mac };
    const id = `id-${spec.name}`;
    this.containers.set(spec.name, { id, name: spec.name, image: spec.image, state: 'created', pid: 0, labels, createdAt: '2026-01-01T00:00:00.000Z' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    return id;
  }
  async start(id: string) {
    this.calls.push(`start ${id}`);
    if (this.fail.start) throw this.fail.start;
    const info = [...this.containers.values()].find((c) => c.id === id)!;
    Object.assign(info, this.exitOnStart ? { state: 'exited', pid: 0 } : { state: 'running', pid: this.nextPid++ });
  }
  async remove(id: string) {
    this.calls.push(`remove ${id}`);
    const info = [...this.containers.values()].find((c) => c.id === id);
    return info ? this.containers.delete(info.name) : false;
  }
  async listManaged() {
    return [...this.containers.values()].filter((c) => c.labels[OWN_LABELS.managed] === 'true').map((c) => ({ ...c, pid: 0 }));
  }
}

/** Remembers which PIDs have eth1; can fail, or restart the container mid-attach. */
class FakeAttacher implements Attacher {
  attachedPids = new Set<number>();
  attaches: AttachTarget[] = [];
  detached: string[] = [];
  fail: Error | null = null;
  duringAttach: (() => void) | null = null;

  dhcp = true;
  /** What a DHCP-mode eth1 holds once "leased"; null while pending. */
  lease: string | null = 'fd00:3::1234/128';

  async isAttached(target: AttachTarget) {
    return this.attachedPids.has(target.pid);
  }
  async addressOf(target: AttachTarget) {
    if (!this.attachedPids.has(target.pid)) return null;
    return isDhcpAddress(target.address) ? this.lease : target.address;
  }
  async attach(target: AttachTarget): Promise<AttachResult> {
    this.attaches.push(target);
    if (this.fail) throw this.fail;
    this.duringAttach?.();
    const changed = !this.attachedPids.has(target.pid);
    this.attachedPids.add(target.pid);
    return { changed, spawns: changed ? 2 : 0, ms: 1, address: isDhcpAddress(target.address) ? this.lease : target.address };
  }
  async detach(name: string) {
    this.detached.push(name);
  }
}

let docker: FakeDocker;
let attacher: FakeAttacher;
let app: ReturnType<typeof createApp>;

function call(method: string, path: string, body?: unknown, sign = true): Promise<Response> {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const headers = sign ? signRequest({ key: ORCHESTRATOR_KEY, authority: 'localhost', method, path, body: text }) : {};
  return Promise.resolve(app.request(path, { method, headers: { ...headers, 'content-type': 'application/json' }, ...(text ? { body: text } : {}) }));
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

beforeEach(() => {
  docker = new FakeDocker();
  attacher = new FakeAttacher();
  app = createApp({
    docker,
    attacher,
    verifier: new RequestVerifier({ keys: new Keyring({ orchestrator: fixedKeys([ORCHESTRATOR_KEY]) }) }),
    network: { gateway: 'fd00:3::1' },
    log: pino({ level: 'silent' }),
  });
});

describe('POST /v1/containers', () => {
  it('creates, starts and attaches: 201 with the view', async () => {
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(201);
    const view = (await response.json()) as ContainerView;
    expect(view).toMatchObject({ name: REQUEST.name, id: `id-${REQUEST.name}`, state: 'running', address: 'fd00:3::100/64', mac: '02:aa:bb:cc:dd:ee' });
    expect(view.labels).toMatchObject({ 'io.unionize.client-id': 'c0ffee', 'io.unionize.managed': 'true' });
    expect(attacher.attaches).toEqual([{ name: REQUEST.name, pid: 1000, mac: '02:aa:bb:cc:dd:ee', address: 'fd00:3::100/64' }]);
  });

  it('answers 200 and does nothing for a running, attached container', async () => {
    await call('POST', '/v1/containers', REQUEST);
    docker.calls = [];
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(200);
    expect(((await response.json()) as ContainerView).address).toBe('fd00:3::100/64');
    expect(docker.calls.filter((c) => !c.startsWith('inspect'))).toEqual([]);
  });

  it('starts a stopped container and attaches it again: 201', async () => {
    await call('POST', '/v1/containers', REQUEST);
    Object.assign(docker.containers.get(REQUEST.name)!, { state: 'exited', pid: 0 });
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(201);
    expect(docker.calls).toContain(`start id-${REQUEST.name}`);
    expect(attacher.attaches.at(-1)?.pid).toBe(1001);
  });

  it('serialises concurrent requests for one name: one create', async () => {
    const responses = await Promise.all([1, 2, 3].map(() => call('POST', '/v1/containers', REQUEST)));
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 201]);
    expect(docker.calls.filter((c) => c.startsWith('create'))).toHaveLength(1);
  });

  it.each([
    ['a bad name', { ...REQUEST, name: 'Bad Name' }, 'name: container name is not valid'],
    ['an unknown field', { ...REQUEST, privileged: true }, 'Unrecognized key'],
    ['an IPv4 address', { ...REQUEST, address: '10.0.0.5/24' }, 'address'],
    ['an address off the gateway prefix', { ...REQUEST, address: 'fd00:4::100/64' }, 'gateway fd00:3::1 is not on fd00:4::100/64'],
    ['the gateway address', { ...REQUEST, address: 'fd00:3::1/64' }, "is the gateway's address"],
    ['a body that is not JSON', '{"name":', 'not JSON'],
  ])('refuses %s with 400', async (_what, body, message) => {
    const response = await call('POST', '/v1/containers', body);
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('INVALID_REQUEST');
    expect(error.message).toContain(message);
  });

  it('takes over a container someone created meanwhile (Docker 409 on create)', async () => {
    const create = docker.create.bind(docker);
    docker.create = async (spec) => {
      await create(spec);
      throw new DockerError(`docker create ${spec.name}: Conflict. The container name is already in use`, 409);
    };
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(201);
    expect(attacher.attaches).toHaveLength(1);
  });

  it('never touches a container it does not manage: 409', async () => {
    docker.containers.set(REQUEST.name, { id: 'x', name: REQUEST.name, image: 'other', state: 'running', pid: 5, labels: {}, createdAt: '' });
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(409);
    expect(await errorCode(response)).toBe('NAME_CONFLICT');
  });

  it('refuses a managed container made differently: 409', async () => {
    await call('POST', '/v1/containers', REQUEST);
    const response = await call('POST', '/v1/containers', { ...REQUEST, address: 'fd00:3::200/64' });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ error: { code: 'CONTAINER_MISMATCH', message: expect.stringContaining('address fd00:3::100/64') } });
  });

  it('refuses a paused container: 409', async () => {
    await call('POST', '/v1/containers', REQUEST);
    docker.containers.get(REQUEST.name)!.state = 'paused';
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(409);
    expect(await errorCode(response)).toBe('CONTAINER_STATE');
  });

  it('maps Docker failures to 502 DOCKER_ERROR with the reason', async () => {
    docker.fail.create = new DockerError('docker create dev-0123456789ab: No such image: unionize-client:latest', 404);
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(502);
    expect(await response.json()).toEqual({
      error: { code: 'DOCKER_ERROR', message: 'docker create dev-0123456789ab: No such image: unionize-client:latest' },
    });
  });

  it('maps attach failures to 500 ATTACH_FAILED with the reason', async () => {
    attacher.fail = new AttachError('attach dev-0123456789ab: host veth: ip -batch -: exit 1: RTNETLINK answers: File exists');
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: { code: 'ATTACH_FAILED', message: expect.stringContaining('File exists') } });
  });

  it('fails when the container restarts during attach', async () => {
    attacher.duringAttach = () => Object.assign(docker.containers.get(REQUEST.name)!, { pid: 4321 });
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: { code: 'ATTACH_FAILED', message: expect.stringContaining('restarted or stopped during attach') } });
  });

  it('fails when the container exits right after start', async () => {
    docker.exitOnStart = true;
    const response = await call('POST', '/v1/containers', REQUEST);
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: { code: 'ATTACH_FAILED', message: expect.stringContaining('is exited right after start') } });
  });
});

describe('GET /v1/containers', () => {
  it('lists managed containers, with an address only where eth1 checks out', async () => {
    await call('POST', '/v1/containers', REQUEST);
    await call('POST', '/v1/containers', { ...REQUEST, name: 'dev-aaaaaaaaaaaa', address: 'fd00:3::101/64' });
    attacher.attachedPids.delete(1001);
    docker.containers.set('unmanaged', { id: 'u', name: 'unmanaged', image: 'x', state: 'running', pid: 9, labels: {}, createdAt: '' });
    const response = await call('GET', '/v1/containers');
    expect(response.status).toBe(200);
    const { containers } = (await response.json()) as { containers: ContainerView[] };
    expect(containers.map((c) => [c.name, c.address])).toEqual([
      ['dev-0123456789ab', 'fd00:3::100/64'],
      ['dev-aaaaaaaaaaaa', null],
    ]);
  });
});

describe('DHCP addressing (address: dhcp)', () => {
  const DHCP = { ...REQUEST, address: DHCP_ADDRESS };

  it('attaches without a static address and reports the lease: 201, then 200', async () => {
    const response = await call('POST', '/v1/containers', DHCP);
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ address: 'fd00:3::1234/128', labels: { [OWN_LABELS.address]: 'dhcp' } });
    expect(attacher.attaches.at(-1)).toMatchObject({ address: DHCP_ADDRESS });
    const again = await call('POST', '/v1/containers', DHCP);
    expect(again.status).toBe(200);
  });

  it('answers with address null while the lease is pending, and lists it once eth1 holds it', async () => {
    attacher.lease = null;
    const response = await call('POST', '/v1/containers', DHCP);
    expect(response.status).toBe(201);
    expect(((await response.json()) as ContainerView).address).toBeNull();
    attacher.lease = 'fd00:3::1234/128';
    const { containers } = (await (await call('GET', '/v1/containers')).json()) as { containers: ContainerView[] };
    expect(containers.map((c) => c.address)).toEqual(['fd00:3::1234/128']);
  });

  it('skips the gateway check, and refuses to switch a container between static and dhcp: 409', async () => {
    await call('POST', '/v1/containers', DHCP);
    const conflict = await call('POST', '/v1/containers', REQUEST);
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toMatchObject({ error: { code: 'CONTAINER_MISMATCH', message: expect.stringContaining('address dhcp') } });
  });

  it('refuses dhcp up front when the backend cannot do it (pipework): 400, nothing created', async () => {
    attacher.dhcp = false;
    const response = await call('POST', '/v1/containers', DHCP);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'INVALID_REQUEST', message: expect.stringContaining('attach = native') } });
    expect(docker.calls.filter((c) => c.startsWith('create'))).toEqual([]);
  });

  it('refuses anything else that is not IPV6/PREFIXLEN: 400', async () => {
    for (const address of ['DHCP', 'dhcp6', 'fd00:3::100']) {
      const response = await call('POST', '/v1/containers', { ...REQUEST, address });
      expect(response.status, address).toBe(400);
    }
  });
});

describe('DELETE /v1/containers/:name', () => {
  it('force-removes and drops the host veth: 204, then 404', async () => {
    await call('POST', '/v1/containers', REQUEST);
    const response = await call('DELETE', `/v1/containers/${REQUEST.name}`);
    expect(response.status).toBe(204);
    expect(docker.calls).toContain(`remove id-${REQUEST.name}`);
    expect(attacher.detached).toEqual([REQUEST.name]);
    const again = await call('DELETE', `/v1/containers/${REQUEST.name}`);
    expect(again.status).toBe(404);
    expect(await errorCode(again)).toBe('NOT_FOUND');
  });

  it('answers 404 for a container it does not manage, 400 for a bad name', async () => {
    docker.containers.set('other', { id: 'o', name: 'other', image: 'x', state: 'running', pid: 9, labels: {}, createdAt: '' });
    expect((await call('DELETE', '/v1/containers/other')).status).toBe(404);
    expect(docker.containers.has('other')).toBe(true);
    // An escaped slash is refused before the signature is checked (one spelling per path); a name that is not one, by its schema.
    const escaped = await call('DELETE', '/v1/containers/..%2Fetc');
    expect(escaped.status).toBe(400);
    expect(await errorCode(escaped)).toBe('BAD_PATH');
    const bad = await call('DELETE', '/v1/containers/..etc');
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe('INVALID_REQUEST');
  });
});

describe("a pair's leadership epoch (x-unionize-leader-epoch)", () => {
  const withEpoch = (method: string, path: string, epoch: string, body?: unknown) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers = { ...signRequest({ key: ORCHESTRATOR_KEY, authority: 'localhost', method, path, body: text }), 'x-unionize-leader-epoch': epoch, 'content-type': 'application/json' };
    return Promise.resolve(app.request(path, { method, headers, ...(text ? { body: text } : {}) }));
  };

  it('takes the highest epoch seen, refuses a deposed leader (a lower one) before it acts, and leaves alone what carries none', async () => {
    expect((await withEpoch('POST', '/v1/containers', '5', REQUEST)).status).toBe(201);
    const removed = docker.calls.length;
    const deposed = await withEpoch('DELETE', `/v1/containers/${REQUEST.name}`, '4');
    expect(deposed.status).toBe(409);
    expect(await errorCode(deposed)).toBe('DEPOSED');
    expect(docker.calls.length).toBe(removed);
    expect(docker.containers.has(REQUEST.name)).toBe(true);
    // The same epoch, a newer one, and an orchestrator alone (no header) go on.
    expect((await withEpoch('DELETE', `/v1/containers/${REQUEST.name}`, '6')).status).toBe(204);
    expect((await withEpoch('DELETE', `/v1/containers/${REQUEST.name}`, '5')).status).toBe(409);
    expect((await call('GET', '/v1/containers')).status).toBe(200);
    expect((await withEpoch('DELETE', `/v1/containers/${REQUEST.name}`, 'x')).status).toBe(400);
  });
});

describe('auth and health', () => {
  it('refuses unsigned and replayed requests: 401', async () => {
    expect((await call('GET', '/v1/containers', undefined, false)).status).toBe(401);
    const headers = signRequest({ key: ORCHESTRATOR_KEY, authority: 'localhost', method: 'GET', path: '/v1/containers', body: '' });
    expect((await app.request('/v1/containers', { headers })).status).toBe(200);
    const replay = await app.request('/v1/containers', { headers });
    expect(replay.status).toBe(401);
    expect(await errorCode(replay)).toBe('UNAUTHENTICATED');
  });

  it('serves /healthz without a signature: 200, or 503 when Docker is down', async () => {
    const ok = await app.request('/healthz');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true });
    docker.fail.ping = new DockerError('docker ping: connect ENOENT /var/run/docker.sock', undefined);
    const down = await app.request('/healthz');
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ ok: false, error: { code: 'DOCKER_UNREACHABLE', message: 'docker ping: connect ENOENT /var/run/docker.sock' } });
  });

  it('answers unknown routes with a JSON 404', async () => {
    const response = await call('GET', '/v1/nothing');
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('NOT_FOUND');
  });
});

describe('isolation ([isolation] mode = filter)', () => {
  /** What nft was given, in order, with how many attaches had happened by then. */
  let writes: Array<{ input: string; attachesBefore: number }>;
  let nftFails: boolean;
  const D1 = 'fd00:1::1000';
  const D2 = 'fd00:1::2000';
  const pairOf = (device: string, container: string) => `${nftAddress(device)} . ${nftAddress(container)}`;

  beforeEach(() => {
    writes = [];
    nftFails = false;
    const isolation = new Isolation({
      mode: 'filter', gateway: 'fd00:3::1', egress: { kind: 'none' },
      run: async (command) => {
        writes.push({ input: command.input ?? '', attachesBefore: attacher.attaches.length });
        docker.calls.push('nft');
        if (nftFails) throw new Error('nft: Operation not permitted');
        return { stdout: '', stderr: '' };
      },
    });
    app = createApp({ docker, attacher, isolation, verifier: new RequestVerifier({ keys: new Keyring({ orchestrator: fixedKeys([ORCHESTRATOR_KEY]) }) }), network: { gateway: 'fd00:3::1' }, log: pino({ level: 'silent' }) });
  });

  it('lets the device in before the container is attached, and says so in the view', async () => {
    const response = await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] });
    expect(response.status).toBe(201);
    expect(((await response.json()) as ContainerView).deviceAddresses).toEqual([D1]);
    expect(writes).toHaveLength(1);
    expect(writes[0]!.attachesBefore).toBe(0);
    expect(writes[0]!.input).toContain(pairOf(D1, 'fd00:3::100'));
    expect(writes[0]!.input).toContain(`"${hostVethName(REQUEST.name)}"`);
    // The same request again changes nothing.
    expect((await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] })).status).toBe(200);
    expect(writes).toHaveLength(1);
  });

  it('writes the filter while Docker creates and starts the container, not after', async () => {
    expect((await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] })).status).toBe(201);
    const order = docker.calls.filter((c) => !c.startsWith('inspect'));
    expect(order).toEqual([`create ${REQUEST.name}`, 'nft', `start id-${REQUEST.name}`]);
    expect(writes[0]!.attachesBefore).toBe(0);
  });

  it('takes the access back when Docker cannot make the container', async () => {
    docker.fail.create = new Error('no such image');
    expect((await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] })).status).toBeGreaterThanOrEqual(500);
    expect(writes[0]!.input).toContain(pairOf(D1, 'fd00:3::100'));
    expect(writes.at(-1)!.input).not.toContain(nftAddress(D1));
    expect(writes.at(-1)!.input).not.toContain(hostVethName(REQUEST.name));
    expect(attacher.attaches).toEqual([]);
  });

  it('gives the access back to the device let in before when a stopped container cannot be started again', async () => {
    expect((await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] })).status).toBe(201);
    Object.assign(docker.containers.get(REQUEST.name)!, { state: 'exited', pid: 0 });
    docker.fail.start = new Error('cannot start');
    expect((await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D2] })).status).toBeGreaterThanOrEqual(500);
    expect(writes.some((w) => w.input.includes(pairOf(D2, 'fd00:3::100')))).toBe(true);
    expect(writes.at(-1)!.input).toContain(pairOf(D1, 'fd00:3::100'));
    expect(writes.at(-1)!.input).not.toContain(nftAddress(D2));
  });

  it('follows the device to its new address when the request comes again', async () => {
    await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] });
    const response = await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D2] });
    expect(response.status).toBe(200);
    expect(((await response.json()) as ContainerView).deviceAddresses).toEqual([D2]);
    expect(writes.at(-1)!.input).toContain(pairOf(D2, 'fd00:3::100'));
    expect(writes.at(-1)!.input).not.toContain(nftAddress(D1));
  });

  it('without deviceAddresses (an older orchestrator), the device-address label', async () => {
    await call('POST', '/v1/containers', { ...REQUEST, labels: { ...REQUEST.labels, 'io.unionize.device-address': D1 } });
    expect(writes[0]!.input).toContain(pairOf(D1, 'fd00:3::100'));
  });

  it.each([['not an address', ['fd00:1::1000; flush ruleset']], ['IPv4', ['10.0.0.1']], ['too many', Array.from({ length: 17 }, (_, i) => `fd00:1::${i + 1}`)]])(
    'refuses device addresses that are %s with 400, writing nothing', async (_what, deviceAddresses) => {
      const response = await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses });
      expect(response.status).toBe(400);
      expect(writes).toEqual([]);
    },
  );

  it('drops the device\'s access before it removes the container', async () => {
    await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] });
    docker.calls = [];
    expect((await call('DELETE', `/v1/containers/${REQUEST.name}`)).status).toBe(204);
    expect(docker.calls.filter((c) => !c.startsWith('inspect'))).toEqual(['nft', `remove id-${REQUEST.name}`]);
    expect(writes.at(-1)!.input).not.toContain(nftAddress(D1));
    expect(writes.at(-1)!.input).not.toContain(hostVethName(REQUEST.name));
  });

  it('keeps the container when the filter cannot be written, and attaches nothing', async () => {
    nftFails = true;
    expect((await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] })).status).toBeGreaterThanOrEqual(500);
    expect(attacher.attaches).toEqual([]);
    nftFails = false;
    expect((await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] })).status).toBe(201);
    nftFails = true;
    expect((await call('DELETE', `/v1/containers/${REQUEST.name}`)).status).toBeGreaterThanOrEqual(500);
    expect(docker.containers.has(REQUEST.name)).toBe(true);
    nftFails = false;
    expect((await call('DELETE', `/v1/containers/${REQUEST.name}`)).status).toBe(204);
    expect(writes.at(-1)!.input).not.toContain(nftAddress(D1));
  });

  it('DHCP addressing: the pair takes the leased address', async () => {
    const response = await call('POST', '/v1/containers', { ...REQUEST, address: DHCP_ADDRESS, deviceAddresses: [D1] });
    expect(response.status).toBe(201);
    expect(writes.at(-1)!.input).toContain(pairOf(D1, 'fd00:3::1234'));
  });

  it('DHCP addressing: a lease that comes after the answer is learnt when the containers are listed', async () => {
    attacher.lease = null;
    await call('POST', '/v1/containers', { ...REQUEST, address: DHCP_ADDRESS, deviceAddresses: [D1] });
    expect(writes.at(-1)!.input).not.toContain(nftAddress(D1));
    attacher.lease = 'fd00:3::4321/128';
    expect((await call('GET', '/v1/containers')).status).toBe(200);
    expect(writes.at(-1)!.input).toContain(pairOf(D1, 'fd00:3::4321'));
  });

  it('DHCP addressing: a lease that comes after the answer lets the device in as soon as eth1 holds it', async () => {
    attacher.lease = null;
    await call('POST', '/v1/containers', { ...REQUEST, address: DHCP_ADDRESS, deviceAddresses: [D1] });
    const before = writes.length;
    attacher.lease = 'fd00:3::4321/128';
    for (const deadline = Date.now() + 10_000; !writes.slice(before).some((w) => w.input.includes(pairOf(D1, 'fd00:3::4321'))); ) {
      if (Date.now() > deadline) throw new Error('the lease was not let in');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(writes.slice(before)).toHaveLength(1);
  });

  it('a container removed behind its back loses its pairs at the next listing', async () => {
    await call('POST', '/v1/containers', { ...REQUEST, deviceAddresses: [D1] });
    docker.containers.delete(REQUEST.name);
    const { containers } = (await (await call('GET', '/v1/containers')).json()) as { containers: ContainerView[] };
    expect(containers).toEqual([]);
    expect(writes.at(-1)!.input).not.toContain(nftAddress(D1));
  });
});
