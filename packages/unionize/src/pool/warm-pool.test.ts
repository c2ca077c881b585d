import type { CreateContainerRequest, PoolSpec } from '@unionize/protocol';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { OWN_LABELS, containerCreateOptions, type ContainerInfo, type CreateSpec, type PoolDockerClient, type VolumeInfo } from '../docker/docker-client.js';
import { CLAIM_LABEL, WarmPool, deviceFactsFile, fitsPool, poolSpecKey } from './warm-pool.js';

const log = pino({ level: 'silent' });

/** Docker in Maps: containers, volumes, and what was copied into each container. */
class FakePoolDocker implements PoolDockerClient {
  containers = new Map<string, ContainerInfo>();
  volumes = new Map<string, Record<string, string>>();
  /** What each member's init was told (by PID). */
  facts = new Map<number, string>();
  writeFacts = async (pid: number, data: Buffer) => {
    this.facts.set(pid, data.toString());
  };
  calls: string[] = [];
  failRename = false;
  #next = 0;

  async ping() {}
  async inspectByName(name: string) {
    const info = [...this.containers.values()].find((c) => c.name === name);
    return info ? { ...info, labels: { ...info.labels } } : null;
  }
  async create(spec: CreateSpec) {
    this.calls.push(`create ${spec.name}`);
    if (spec.image === 'bad:latest') throw new Error('docker create: No such image: bad:latest');
    const id = `${(++this.#next).toString(16).padStart(4, '0')}${'0'.repeat(60)}`;
    this.containers.set(id, { id, name: spec.name, image: spec.image, state: 'created', pid: 0, labels: containerCreateOptions(spec).Labels, createdAt: '2026-01-01T00:00:00.000Z' });
    return id;
  }
  async start(id: string) {
    this.calls.push(`start ${id.slice(0, 4)}`);
    Object.assign(this.containers.get(id)!, { state: 'running', pid: 100 + this.#next });
  }
  async remove(id: string) {
    this.calls.push(`remove ${id.slice(0, 4)}`);
    return this.containers.delete(id);
  }
  async listManaged() {
    return [...this.containers.values()].filter((c) => c.labels[OWN_LABELS.managed] === 'true').map((c) => ({ ...c, pid: 0 }));
  }
  async rename(id: string, name: string) {
    if (this.failRename || [...this.containers.values()].some((c) => c.name === name)) return false;
    this.containers.get(id)!.name = name;
    return true;
  }
  async createVolume(name: string, labels: Record<string, string>) {
    this.volumes.set(name, labels);
  }
  async inspectVolume(name: string): Promise<VolumeInfo | null> {
    const labels = this.volumes.get(name);
    return labels ? { name, labels } : null;
  }
  async removeVolume(name: string) {
    return this.volumes.delete(name);
  }
  async listVolumes(label: string) {
    return [...this.volumes].filter(([, labels]) => label in labels).map(([name, labels]) => ({ name, labels }));
  }
  members(): ContainerInfo[] {
    return [...this.containers.values()].filter((c) => c.name.startsWith('pool-'));
  }
}

const SPEC: PoolSpec = { name: 'default', size: 2, image: 'unionize-client:latest', env: { GREETING: 'hello' } };

function request(name: string, overrides: Partial<CreateContainerRequest> = {}): CreateContainerRequest {
  return {
    name, image: SPEC.image, mac: '0a:00:00:00:00:01', address: 'fd00:3::101/64', pool: 'default',
    labels: { 'io.unionize.client-id': `client-${name}`, 'io.unionize.device-address': 'fd00:1::1000' },
    env: { GREETING: 'hello', DEVICE_DUID: '00:01:00:01:aa', DEVICE_HOSTNAME: 'evil\nDEVICE_DUID=forged' },
    ...overrides,
  };
}

async function poolWith(docker: FakePoolDocker, specs: PoolSpec[] = [SPEC], options: { busy?: () => number } = {}): Promise<WarmPool> {
  const pool = new WarmPool({ docker, log, maxMembers: 10, busy: options.busy ?? (() => 0), retryMs: 10, writeFacts: docker.writeFacts });
  await pool.setSpecs(specs);
  await pool.idle();
  return pool;
}

describe('WarmPool', () => {
  it('keeps its size of started members, with no network, labelled with their pool and how they were made', async () => {
    const docker = new FakePoolDocker();
    const pool = await poolWith(docker);
    expect(docker.members()).toHaveLength(2);
    for (const member of docker.members()) {
      expect(member.state).toBe('running');
      expect(member.labels).toMatchObject({ [OWN_LABELS.pool]: 'default', [OWN_LABELS.poolSpec]: poolSpecKey(SPEC) });
      expect(member.labels[OWN_LABELS.mac]).toBeUndefined();
    }
    expect(pool.status()).toEqual([{ name: 'default', size: 2, ready: 2, starting: 0, claims: 0, misses: 0, lastRefillMs: expect.any(Number) }]);
  });

  it('claims a member: the record and the facts, then the rename beside the attach; the container carries the claim\'s labels; the pool refills', async () => {
    const docker = new FakePoolDocker();
    const pool = await poolWith(docker);
    const [first] = docker.members();
    const info = await pool.claim(request('dev-aaaaaaaaaaaa'));
    expect(info).toMatchObject({ id: first!.id, name: 'dev-aaaaaaaaaaaa', state: 'running' });
    expect(info!.labels).toMatchObject({ 'io.unionize.client-id': 'client-dev-aaaaaaaaaaaa', [OWN_LABELS.mac]: '0a:00:00:00:00:01', [OWN_LABELS.address]: 'fd00:3::101/64', [OWN_LABELS.pool]: 'default' });
    expect(JSON.parse(docker.volumes.get(`unionize-claim-${first!.id}`)![CLAIM_LABEL]!)).toMatchObject({ name: 'dev-aaaaaaaaaaaa', mac: '0a:00:00:00:00:01' });
    const facts = docker.facts.get(first!.pid)!;
    // One line a fact, whatever the device put in its hostname.
    expect(facts).toContain('DEVICE_HOSTNAME=evil DEVICE_DUID=forged\n');
    expect(facts).toContain('DEVICE_DUID=00:01:00:01:aa\n');
    await pool.idle();
    expect(pool.status()[0]).toMatchObject({ ready: 2, claims: 1, misses: 0 });
    // Another process (a restart) reads the claim back from its volume.
    const again = new WarmPool({ docker, log, maxMembers: 10, busy: () => 0, writeFacts: docker.writeFacts });
    const seen = await again.withClaim((await docker.inspectByName('dev-aaaaaaaaaaaa'))!);
    expect(seen.labels['io.unionize.client-id']).toBe('client-dev-aaaaaaaaaaaa');
  });

  it('misses (cold) when none is ready, the request is made otherwise, or it names no pool here', async () => {
    const docker = new FakePoolDocker();
    let busy = 0;
    const pool = await poolWith(docker, [{ ...SPEC, size: 1 }], { busy: () => busy });
    busy = 1;
    expect(await pool.claim(request('dev-1', { image: 'other:latest' }))).toBeNull();
    expect(await pool.claim(request('dev-2', { env: { GREETING: 'bye' } }))).toBeNull();
    expect(await pool.claim(request('dev-3', { pool: 'nosuch' }))).toBeNull();
    expect(await pool.claim(request('dev-4'))).not.toBeNull();
    // Busy: no refill yet, so the next finds none.
    expect(await pool.claim(request('dev-5'))).toBeNull();
    expect(pool.status().find((p) => p.name === 'default')).toMatchObject({ claims: 1, misses: 3 });
    pool.stop();
  });

  it('waits for container requests in progress before it makes a member', async () => {
    const docker = new FakePoolDocker();
    let busy = 1;
    const pool = new WarmPool({ docker, log, maxMembers: 10, busy: () => busy, retryMs: 10, writeFacts: docker.writeFacts });
    await pool.setSpecs([SPEC]);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(docker.calls.filter((c) => c.startsWith('create'))).toEqual([]);
    busy = 0;
    await pool.idle();
    expect(docker.members()).toHaveLength(2);
  });

  it('a claim that fails removes the member and its record, and answers cold', async () => {
    const docker = new FakePoolDocker();
    const pool = await poolWith(docker, [{ ...SPEC, size: 1 }]);
    const [member] = docker.members();
    docker.failRename = true;
    expect(await pool.claim(request('dev-aaaaaaaaaaaa'))).toBeNull();
    expect(docker.containers.has(member!.id)).toBe(false);
    expect(docker.volumes.size).toBe(0);
    expect(pool.status()[0]).toMatchObject({ claims: 0, misses: 1 });
  });

  it('attaches beside the rename, on the member with its claim; an attach that fails removes the member and answers cold', async () => {
    const docker = new FakePoolDocker();
    const pool = await poolWith(docker, [{ ...SPEC, size: 1 }]);
    const [member] = docker.members();
    const seen: ContainerInfo[] = [];
    const info = await pool.claim(request('dev-a'), log, async (claimed) => {
      seen.push(claimed);
    });
    expect(seen).toEqual([info]);
    expect(seen[0]).toMatchObject({ id: member!.id, name: 'dev-a', pid: member!.pid, labels: { [OWN_LABELS.mac]: '0a:00:00:00:00:01' } });
    await pool.idle();
    const [next] = docker.members();
    expect(await pool.claim(request('dev-b'), log, async () => {
      throw new Error('RTNETLINK answers: File exists');
    })).toBeNull();
    expect(docker.containers.has(next!.id)).toBe(false);
    expect(docker.volumes.has(`unionize-claim-${next!.id}`)).toBe(false);
    expect(pool.status()[0]).toMatchObject({ claims: 1, misses: 1 });
  });

  it('replaces members made otherwise when the spec changes, and empties a pool no longer named or sized 0', async () => {
    const docker = new FakePoolDocker();
    const pool = await poolWith(docker);
    const old = docker.members().map((m) => m.id);
    await pool.setSpecs([{ ...SPEC, env: { GREETING: 'changed' } }, { ...SPEC, name: 'small', size: 1 }]);
    await pool.idle();
    expect(docker.members().some((m) => old.includes(m.id))).toBe(false);
    expect(docker.members()).toHaveLength(3);
    await pool.setSpecs([{ ...SPEC, size: 0 }]);
    expect(docker.members()).toHaveLength(0);
    expect(pool.status().map((p) => [p.name, p.size, p.ready])).toEqual([['default', 0, 0], ['small', 0, 0]]);
  });

  it('replaces members that stopped or went behind its back when next told its pools', async () => {
    const docker = new FakePoolDocker();
    const pool = await poolWith(docker);
    const [stopped, gone] = docker.members();
    docker.containers.get(stopped!.id)!.state = 'exited';
    docker.containers.delete(gone!.id);
    await pool.setSpecs([SPEC]);
    await pool.idle();
    expect(docker.containers.has(stopped!.id)).toBe(false);
    expect(docker.members().map((m) => m.state)).toEqual(['running', 'running']);
    expect(pool.status()[0]).toMatchObject({ ready: 2 });
  });

  it('a pool whose members cannot be made waits, doubling, while the other pools fill', async () => {
    const docker = new FakePoolDocker();
    const pool = new WarmPool({ docker, log, maxMembers: 10, busy: () => 0, retryMs: 20, writeFacts: docker.writeFacts });
    await pool.setSpecs([{ ...SPEC, name: 'broken', image: 'bad:latest', size: 5 }, { ...SPEC, size: 2 }]);
    for (let i = 0; i < 100 && docker.members().length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(docker.members()).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 150));
    // 20, 40, 80 ms: a few tries in 150 ms, not one each turn of the loop.
    expect(docker.calls.filter((c) => c.startsWith('create')).length).toBeLessThan(2 + 6);
    pool.stop();
    await pool.idle();
  });

  it('a rename that fails while the attach still runs: both are over before the member goes, and the answer is cold', async () => {
    const docker = new FakePoolDocker();
    const pool = await poolWith(docker, [{ ...SPEC, size: 1 }]);
    docker.failRename = true;
    let attachDone = false;
    const info = await pool.claim(request('dev-a'), log, async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      attachDone = true;
    });
    expect(info).toBeNull();
    expect(attachDone).toBe(true);
    pool.stop();
  });

  it('restores before it first makes members (a restore that failed at start is done then): none made beside ones not yet counted', async () => {
    const docker = new FakePoolDocker();
    const first = await poolWith(docker);
    first.stop();
    const second = new WarmPool({ docker, log, maxMembers: 10, busy: () => 0, writeFacts: docker.writeFacts });
    await second.setSpecs([SPEC]);
    await second.idle();
    expect(docker.members()).toHaveLength(2);
    expect(second.status()[0]).toMatchObject({ ready: 2 });
  });

  it('never keeps more members than maxMembers, all pools together', async () => {
    const docker = new FakePoolDocker();
    const pool = new WarmPool({ docker, log, maxMembers: 3, busy: () => 0, writeFacts: docker.writeFacts });
    await pool.setSpecs([{ ...SPEC, size: 2 }, { ...SPEC, name: 'b', size: 2 }]);
    await pool.idle();
    expect(docker.members()).toHaveLength(3);
  });

  it('restore: unclaimed members back, claims read back, a half-made claim, a stopped member and a stray record removed; a claim that lost its record kept', async () => {
    const docker = new FakePoolDocker();
    const before = await poolWith(docker, [{ ...SPEC, size: 4 }]);
    const claimed = await before.claim(request('dev-claimed'));
    await before.idle();
    const [half, stopped, norecord, back] = docker.members();
    // A claim whose agent died before the rename; a member stopped by a dockerd restart; one renamed with its record lost.
    await docker.createVolume(`unionize-claim-${half!.id}`, { [CLAIM_LABEL]: JSON.stringify({ name: 'dev-half', labels: {}, mac: 'x', address: 'y' }) });
    docker.containers.get(stopped!.id)!.state = 'exited';
    docker.containers.get(norecord!.id)!.name = 'dev-norecord';
    await docker.createVolume('unionize-claim-gone', { [CLAIM_LABEL]: '{}' });

    const after = new WarmPool({ docker, log, maxMembers: 10, busy: () => 0, writeFacts: docker.writeFacts });
    await after.restore();
    expect([...docker.containers.keys()].sort()).toEqual([claimed!.id, back!.id, norecord!.id].sort());
    // The one whose record went is kept, and recorded again by its device's next request.
    const lost = (await docker.inspectByName('dev-norecord'))!;
    expect(after.needsRecord(await after.withClaim(lost))).toBe(true);
    const recorded = await after.recordClaim(await after.withClaim(lost), request('dev-norecord'));
    expect(recorded.labels).toMatchObject({ 'io.unionize.client-id': 'client-dev-norecord', [OWN_LABELS.mac]: '0a:00:00:00:00:01' });
    expect(after.needsRecord(recorded)).toBe(false);
    await docker.removeVolume(`unionize-claim-${norecord!.id}`);
    docker.containers.delete(norecord!.id);
    expect([...docker.volumes.keys()]).toEqual([`unionize-claim-${claimed!.id}`]);
    expect(after.status()).toEqual([{ name: 'default', size: 0, ready: 1, starting: 0, claims: 0, misses: 0, lastRefillMs: null }]);
    const info = await after.withClaim((await docker.inspectByName('dev-claimed'))!);
    expect(info.labels['io.unionize.client-id']).toBe('client-dev-claimed');
    expect(after.isMember(info)).toBe(false);
    expect(after.isMember((await docker.inspectByName(back!.name))!)).toBe(true);
    // The restored member is claimed like any other once the orchestrator names its pool again.
    await after.setSpecs([{ ...SPEC, size: 1 }]);
    expect((await after.claim(request('dev-next')))?.id).toBe(back!.id);
  });

  it('forgets a removed container\'s record', async () => {
    const docker = new FakePoolDocker();
    const pool = await poolWith(docker, [{ ...SPEC, size: 1 }]);
    const info = await pool.claim(request('dev-aaaaaaaaaaaa'));
    await pool.forget(info!.id);
    expect(docker.volumes.size).toBe(0);
  });
});

describe('pool helpers', () => {
  it('fitsPool: same image, command and limits, and the pool\'s env within the request\'s', () => {
    expect(fitsPool(SPEC, request('a'))).toBe(true);
    expect(fitsPool(SPEC, request('a', { command: ['/bin/sh'] }))).toBe(false);
    expect(fitsPool(SPEC, request('a', { memoryBytes: 64 * 1024 * 1024 }))).toBe(false);
    expect(fitsPool({ ...SPEC, env: { A: '1' } }, request('a'))).toBe(false);
  });

  it('poolSpecKey does not depend on env order, and does on everything else', () => {
    expect(poolSpecKey({ ...SPEC, env: { A: '1', B: '2' } })).toBe(poolSpecKey({ ...SPEC, env: { B: '2', A: '1' } }));
    expect(poolSpecKey(SPEC)).not.toBe(poolSpecKey({ ...SPEC, nanoCpus: 1e9 }));
    expect(poolSpecKey(SPEC)).not.toBe(poolSpecKey({ ...SPEC, command: ['x'] }));
  });

  it('deviceFactsFile writes one line a fact', () => {
    expect(deviceFactsFile({ A: 'x\r\ny', B: 'ok' }).toString()).toBe('A=x  y\nB=ok\n');
  });
});
