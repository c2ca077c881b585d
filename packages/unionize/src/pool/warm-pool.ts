import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DEVICE_FACTS_PATH, type CreateContainerRequest, type PoolSpec, type PoolStatus } from '@unionize/protocol';
import type { Logger } from 'pino';
import { OWN_LABELS, type ContainerInfo, type PoolDockerClient } from '../docker/docker-client.js';
import { writeIntoContainer } from './facts-file.js';

/**
 * Warm pools: per profile, a few containers created and started with no
 * network, so that a lease's container is a rename and an attach away
 * instead of a `docker start` (README, Warm pool).
 *
 * A member is named `pool-HEX` and labelled with its pool and how it was made
 * (OWN_LABELS.pool, .poolSpec). A claim, in this order:
 *   1. records the device's labels, MAC and address in a Docker volume named
 *      for the member's id (`unionize-claim-ID`, label CLAIM_LABEL): labels
 *      cannot change after create, and a record the device could edit (a file
 *      in its own container) must not decide whose container it is; and, at
 *      the same time, writes the device's facts (the request's env) to
 *      DEVICE_FACTS_PATH in the member (facts-file.ts);
 *   2. renames the member to the device's container name, the claim's
 *      commit, while the caller attaches it (`whileRenaming`): a member
 *      attached is never one without a record.
 * After a restart (restore): a `pool-` member with a record was being claimed
 * when the agent died, and goes; without one it is back in the pool; a
 * renamed member is its device's, with the labels of its record, or goes when
 * it has none. A container claimed is never a member again.
 */

export const POOL_NAME_PREFIX = 'pool-';
export const CLAIM_VOLUME_PREFIX = 'unionize-claim-';
/** On a claim's volume: the claim as JSON. */
export const CLAIM_LABEL = 'io.unionize.claim';

/** What a claim fixes that the member's labels cannot hold. */
export interface Claim {
  name: string;
  labels: Record<string, string>;
  mac: string;
  address: string;
}

/** How a pool's members are made, as one short hash: a member made otherwise is not claimed, and is replaced. */
export function poolSpecKey(spec: Pick<PoolSpec, 'image' | 'command' | 'memoryBytes' | 'nanoCpus' | 'env'>): string {
  const env = Object.entries(spec.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonical = JSON.stringify([spec.image, spec.command ?? null, spec.memoryBytes ?? null, spec.nanoCpus ?? null, env]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** A request a member of this pool can serve: made the same way, and the pool's env entries the request's too. */
export function fitsPool(spec: PoolSpec, req: CreateContainerRequest): boolean {
  if (req.image !== spec.image || req.memoryBytes !== spec.memoryBytes || req.nanoCpus !== spec.nanoCpus) return false;
  if (JSON.stringify(req.command ?? null) !== JSON.stringify(spec.command ?? null)) return false;
  return Object.entries(spec.env).every(([key, value]) => req.env[key] === value);
}

/** DEVICE_FACTS_PATH's lines: `NAME=value`, a value's control characters as spaces (one line each, whatever a device sent). */
export function deviceFactsFile(env: Readonly<Record<string, string>>): Buffer {
  // eslint-disable-next-line no-control-regex
  const lines = Object.entries(env).map(([key, value]) => `${key}=${value.replace(/[\u0000-\u001f\u007f]/g, ' ')}\n`);
  return Buffer.from(lines.join(''), 'utf8');
}

export const isPoolMemberName = (name: string) => name.startsWith(POOL_NAME_PREFIX);
/** Empty in a container made from a kept image of a claimed member (kept-images.ts empties it): no member. */
const isPoolContainer = (info: ContainerInfo) => Boolean(info.labels[OWN_LABELS.pool]);
const claimVolumeOf = (containerId: string) => `${CLAIM_VOLUME_PREFIX}${containerId}`;

function parseClaim(json: string | undefined): Claim | null {
  if (json === undefined) return null;
  try {
    const claim = JSON.parse(json) as Partial<Claim>;
    if (typeof claim.name !== 'string' || typeof claim.mac !== 'string' || typeof claim.address !== 'string' || typeof claim.labels !== 'object' || claim.labels === null) return null;
    return { name: claim.name, mac: claim.mac, address: claim.address, labels: Object.fromEntries(Object.entries(claim.labels).filter(([, v]) => typeof v === 'string')) };
  } catch {
    return null;
  }
}

interface Member {
  id: string;
  name: string;
  key: string;
}

interface Counts {
  claims: number;
  misses: number;
  lastRefillMs: number | null;
}

export interface WarmPoolOptions {
  docker: PoolDockerClient;
  log: Logger;
  /** Most members in all pools together (`[pool] max_containers`). */
  maxMembers: number;
  /** Container requests in progress: refills wait for them (a dry pool in a burst must not slow the cold path, nor a claim). */
  busy: () => number;
  /** After a failed refill, the first wait before the next (doubling to 30 s). */
  retryMs?: number;
  onClaim?: (pool: string) => void;
  onMiss?: (pool: string) => void;
  onRefill?: (pool: string, seconds: number) => void;
  /** Writes the device's facts into a member (its init's PID); default through /proc/PID/root (facts-file.ts). */
  writeFacts?: (pid: number, data: Buffer) => Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

export class WarmPool {
  readonly #o: WarmPoolOptions;
  /** Pools wanted, by name, with their spec's key. */
  #specs = new Map<string, PoolSpec & { key: string }>();
  /** Started, unclaimed members by pool name, oldest first. */
  readonly #ready = new Map<string, Member[]>();
  readonly #counts = new Map<string, Counts>();
  /** Pools whose last member could not be made, and until when they wait (the others go on meanwhile). */
  readonly #backoff = new Map<string, { until: number; ms: number; key: string }>();
  /** Claims by container id (their volumes' contents). */
  readonly #claims = new Map<string, Claim>();
  #starting: string | null = null;
  #refilling: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #restored = false;

  constructor(options: WarmPoolOptions) {
    this.#o = options;
  }

  get maxMembers(): number {
    return this.#o.maxMembers;
  }

  #count(pool: string): Counts {
    let counts = this.#counts.get(pool);
    if (!counts) this.#counts.set(pool, (counts = { claims: 0, misses: 0, lastRefillMs: null }));
    return counts;
  }

  #members(): number {
    let n = this.#starting === null ? 0 : 1;
    for (const members of this.#ready.values()) n += members.length;
    return n;
  }

  /**
   * At start: members back in their pools, claims read back, what a crash
   * left half done removed. Until it has succeeded (Docker may come up after
   * the daemon), setSpecs does it first: no member is made beside ones not
   * yet counted.
   */
  async restore(): Promise<void> {
    if (this.#restored) return;
    const { docker, log } = this.#o;
    const [containers, volumes] = await Promise.all([docker.listManaged(), docker.listVolumes(CLAIM_LABEL)]);
    const claims = new Map<string, Claim | null>();
    for (const volume of volumes) {
      if (volume.name.startsWith(CLAIM_VOLUME_PREFIX)) claims.set(volume.name.slice(CLAIM_VOLUME_PREFIX.length), parseClaim(volume.labels[CLAIM_LABEL]));
    }
    const seen = new Set<string>();
    let back = 0;
    let removed = 0;
    for (const c of containers) {
      if (!isPoolContainer(c)) continue;
      seen.add(c.id);
      const claim = claims.get(c.id) ?? null;
      if (isPoolMemberName(c.name) && !claims.has(c.id) && c.state === 'running') {
        this.#readyOf(c.labels[OWN_LABELS.pool]!).push({ id: c.id, name: c.name, key: c.labels[OWN_LABELS.poolSpec] ?? '' });
        back++;
      } else if (!isPoolMemberName(c.name) && claim) {
        this.#claims.set(c.id, claim);
      } else if (!isPoolMemberName(c.name)) {
        // Its name is its claim; its record went (a `docker volume prune`). Its device's next request records it again (recordClaim).
        log.warn({ container: c.name, id: c.id }, 'pool: a claimed container has lost its record; kept, and recorded again at its device\'s next request');
      } else {
        // Stopped (dockerd restarted) or half claimed: nobody's, or nobody can say whose.
        log.warn({ container: c.name, id: c.id, state: c.state, record: claims.has(c.id) }, 'pool: removing a member that cannot go back to its pool');
        await this.#discard(c.id);
        removed++;
      }
    }
    for (const id of claims.keys()) if (!seen.has(id)) await docker.removeVolume(claimVolumeOf(id)).catch(() => false);
    this.#restored = true;
    log.info({ members: back, claimed: this.#claims.size, removed }, 'pool: restored');
  }

  #readyOf(pool: string): Member[] {
    let members = this.#ready.get(pool);
    if (!members) this.#ready.set(pool, (members = []));
    return members;
  }

  /**
   * The pools wanted now (PUT /v1/pools, each few seconds): members that
   * stopped (dockerd restarted) or went, were made otherwise, or are beyond a
   * pool's size go; the rest are refilled.
   */
  async setSpecs(specs: readonly PoolSpec[]): Promise<void> {
    await this.restore();
    this.#specs = new Map(specs.map((spec) => [spec.name, { ...spec, key: poolSpecKey(spec) }]));
    // A pool made otherwise now is tried again at once.
    for (const [pool, backoff] of this.#backoff) if (this.#specs.get(pool)?.key !== backoff.key) this.#backoff.delete(pool);
    const surplus: Member[] = [];
    // Only members known before the listing: one a refill adds meanwhile is not in it, and runs.
    const known = new Set([...this.#ready.values()].flat().map((m) => m.id));
    // One Docker listing a telling, and none while there is no member to check.
    const running = known.size === 0 ? undefined : await this.#o.docker.listManaged().then(
      (containers) => new Set(containers.filter((c) => c.state === 'running').map((c) => c.id)),
      (error: unknown) => {
        this.#o.log.warn({ err: error }, 'pool: members not checked (docker list failed)');
        return undefined;
      },
    );
    if (running) {
      for (const [pool, members] of this.#ready) {
        const stopped = members.filter((m) => known.has(m.id) && !running.has(m.id));
        if (stopped.length === 0) continue;
        this.#o.log.warn({ pool, members: stopped.map((m) => m.name) }, 'pool: members no longer running (dockerd restarted?) are replaced');
        surplus.push(...stopped);
        this.#ready.set(pool, members.filter((m) => !stopped.includes(m)));
      }
    }
    for (const [pool, members] of this.#ready) {
      const spec = this.#specs.get(pool);
      const kept = members.filter((m) => spec !== undefined && m.key === spec.key);
      surplus.push(...members.filter((m) => !kept.includes(m)), ...kept.splice(spec?.size ?? 0));
      this.#ready.set(pool, kept);
    }
    for (const member of surplus) {
      this.#o.log.info({ container: member.name }, 'pool: removing a member no longer wanted');
      await this.#discard(member.id);
    }
    this.#kick();
  }

  status(): PoolStatus[] {
    const names = [...new Set([...this.#specs.keys(), ...this.#ready.keys()])].sort();
    return names.map((name) => {
      const counts = this.#count(name);
      return {
        name,
        size: this.#specs.get(name)?.size ?? 0,
        ready: this.#ready.get(name)?.length ?? 0,
        starting: this.#starting === name ? 1 : 0,
        claims: counts.claims,
        misses: counts.misses,
        lastRefillMs: counts.lastRefillMs,
      };
    });
  }

  /**
   * The request's container from its pool: a member claimed and renamed to
   * `req.name`, with its claim's labels; `whileRenaming` (the attach) runs
   * beside the rename, on the same container. null when none is ready, or
   * the claim failed (the member is removed): the caller makes it cold.
   */
  async claim(req: CreateContainerRequest, log: Logger = this.#o.log, whileRenaming?: (info: ContainerInfo) => Promise<void>): Promise<ContainerInfo | null> {
    if (req.pool === undefined) return null;
    const pool = req.pool;
    const spec = this.#specs.get(pool);
    const members = this.#ready.get(pool) ?? [];
    const fits = spec !== undefined && fitsPool(spec, req);
    const index = fits ? members.findIndex((m) => m.key === spec.key) : -1;
    if (index < 0) {
      this.#miss(pool, log, fits ? 'none ready' : spec ? 'request made otherwise than the pool' : 'no such pool here');
      return null;
    }
    const [member] = members.splice(index, 1);
    const { docker } = this.#o;
    const claim: Claim = { name: req.name, labels: req.labels, mac: req.mac, address: req.address };
    const writeFacts = this.#o.writeFacts ?? ((pid: number, data: Buffer) => writeIntoContainer(pid, DEVICE_FACTS_PATH, data, { containerId: member!.id }));
    const steps: Record<string, number> = {};
    const timed = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      try {
        return await fn();
      } finally {
        steps[step] = Math.round(performance.now() - t);
      }
    };
    try {
      const found = await timed('inspectMs', () => docker.inspectByName(member!.name));
      if (!found || found.id !== member!.id || found.state !== 'running' || found.pid <= 0) throw new Error(`member ${member!.name} is ${found?.state ?? 'gone'}`);
      await Promise.all([
        timed('recordMs', () => docker.createVolume(claimVolumeOf(member!.id), { [CLAIM_LABEL]: JSON.stringify(claim) })),
        timed('factsMs', () => writeFacts(found.pid, deviceFactsFile(req.env))),
      ]);
      this.#claims.set(member!.id, claim);
      const info = await this.withClaim({ ...found, name: req.name });
      // Both finish before either failure counts: an attach still running must not outlive a claim given up.
      const [renamed, attached] = await Promise.allSettled([
        timed('renameMs', async () => {
          if (!(await docker.rename(member!.id, req.name))) throw new Error(`the name ${req.name} is taken`);
        }),
        whileRenaming?.(info),
      ]);
      if (renamed.status === 'rejected') throw renamed.reason;
      if (attached.status === 'rejected') throw attached.reason;
      this.#count(pool).claims++;
      this.#o.onClaim?.(pool);
      log.info({ pool, member: member!.name, container: req.name, ...steps }, 'pool: member claimed');
      return info;
    } catch (error) {
      this.#claims.delete(member!.id);
      log.warn({ pool, member: member!.name, err: error }, 'pool: claim failed; removing the member, making the container cold');
      await this.#discard(member!.id);
      this.#miss(pool, log, 'claim failed');
      return null;
    } finally {
      this.#kick();
    }
  }

  #miss(pool: string, log: Logger, why: string): void {
    this.#count(pool).misses++;
    this.#o.onMiss?.(pool);
    log.info({ pool, why }, 'pool: miss, made cold');
  }

  /**
   * A container as its device's: a claimed member gets its claim's labels,
   * MAC and address (its own labels win). Anything else comes back as it is.
   * A claim not known in memory is read from its volume.
   */
  async withClaim(info: ContainerInfo): Promise<ContainerInfo> {
    if (!isPoolContainer(info) || isPoolMemberName(info.name)) return info;
    let claim = this.#claims.get(info.id);
    if (!claim) {
      const volume = await this.#o.docker.inspectVolume(claimVolumeOf(info.id));
      claim = parseClaim(volume?.labels[CLAIM_LABEL]) ?? undefined;
      if (!claim) return info;
      this.#claims.set(info.id, claim);
    }
    return { ...info, labels: { ...claim.labels, ...info.labels, [OWN_LABELS.mac]: claim.mac, [OWN_LABELS.address]: claim.address } };
  }

  /** A claimed member whose record is gone (withClaim found none): it has no MAC or address to attach with. */
  needsRecord(info: ContainerInfo): boolean {
    return isPoolContainer(info) && !isPoolMemberName(info.name) && info.labels[OWN_LABELS.mac] === undefined;
  }

  /**
   * The record of a claimed member, made again from its device's request: the
   * request names the container (its name is the claim's commit), and only the
   * orchestrator sends requests.
   */
  async recordClaim(info: ContainerInfo, req: CreateContainerRequest): Promise<ContainerInfo> {
    if (info.name !== req.name || !this.needsRecord(info)) return info;
    const claim: Claim = { name: req.name, labels: req.labels, mac: req.mac, address: req.address };
    await this.#o.docker.createVolume(claimVolumeOf(info.id), { [CLAIM_LABEL]: JSON.stringify(claim) });
    this.#claims.set(info.id, claim);
    this.#o.log.info({ container: info.name, id: info.id }, 'pool: claim recorded again from its device\'s request');
    return this.withClaim(info);
  }

  /** Not a device's container: an unclaimed member (lists leave them out). */
  isMember(info: ContainerInfo): boolean {
    return isPoolContainer(info) && isPoolMemberName(info.name);
  }

  /** A claimed container was removed: its record goes too. */
  async forget(containerId: string): Promise<void> {
    if (!this.#claims.delete(containerId) && !(await this.#o.docker.inspectVolume(claimVolumeOf(containerId)))) return;
    await this.#o.docker.removeVolume(claimVolumeOf(containerId));
  }

  /** Stops refilling (the daemon is going); members stay for the next start. */
  stop(): void {
    this.#stopped = true;
  }

  async #discard(id: string): Promise<void> {
    const { docker, log } = this.#o;
    try {
      await docker.remove(id);
      await docker.removeVolume(claimVolumeOf(id));
    } catch (error) {
      log.warn({ id, err: error }, 'pool: could not remove a member; the next restore tries again');
    }
  }

  #lack(spec: PoolSpec): number {
    return spec.size - (this.#ready.get(spec.name)?.length ?? 0);
  }

  /** The pool that most lacks members and is not waiting out a failure, while all of them together stay under maxMembers. */
  #wanting(now = Date.now()): (PoolSpec & { key: string }) | undefined {
    if (this.#members() >= this.#o.maxMembers) return undefined;
    let best: (PoolSpec & { key: string }) | undefined;
    let bestLack = 0;
    for (const spec of this.#specs.values()) {
      if ((this.#backoff.get(spec.name)?.until ?? 0) > now) continue;
      const lack = this.#lack(spec);
      if (lack > bestLack) {
        best = spec;
        bestLack = lack;
      }
    }
    return best;
  }

  #kick(): void {
    if (this.#stopped) return;
    if (this.#refilling) {
      this.#again = true;
      return;
    }
    this.#refilling = this.#refill().finally(() => {
      this.#refilling = undefined;
      if (this.#again) {
        this.#again = false;
        this.#kick();
      }
    });
  }

  /** When the first pool that lacks members ends its wait after a failure; undefined when none waits. */
  #nextTry(): number | undefined {
    if (this.#members() >= this.#o.maxMembers) return undefined;
    let next: number | undefined;
    for (const spec of this.#specs.values()) {
      const backoff = this.#backoff.get(spec.name);
      if (backoff && this.#lack(spec) > 0) next = Math.min(next ?? backoff.until, backoff.until);
    }
    return next;
  }

  /** One member at a time, after any container request in progress; a pool that fails waits (doubling to 30 s), the others go on. */
  async #refill(): Promise<void> {
    const { docker, log } = this.#o;
    while (!this.#stopped) {
      const spec = this.#wanting();
      if (!spec) {
        const next = this.#nextTry();
        if (next === undefined) return;
        await sleep(Math.max(10, next - Date.now()));
        continue;
      }
      if (this.#o.busy() > 0) {
        await sleep(50);
        continue;
      }
      const name = `${POOL_NAME_PREFIX}${randomBytes(6).toString('hex')}`;
      const started = performance.now();
      this.#starting = spec.name;
      let id: string | undefined;
      try {
        id = await docker.create({
          name,
          image: spec.image,
          labels: { [OWN_LABELS.pool]: spec.name, [OWN_LABELS.poolSpec]: spec.key },
          env: spec.env,
          ...(spec.command ? { command: spec.command } : {}),
          ...(spec.memoryBytes ? { memoryBytes: spec.memoryBytes } : {}),
          ...(spec.nanoCpus ? { nanoCpus: spec.nanoCpus } : {}),
        });
        await docker.start(id);
        const info = await docker.inspectByName(name);
        if (info?.state !== 'running') throw new Error(`member ${name} is ${info?.state ?? 'gone'} right after start (check the image and command)`);
        const seconds = (performance.now() - started) / 1000;
        this.#count(spec.name).lastRefillMs = Math.round(seconds * 1000);
        this.#o.onRefill?.(spec.name, seconds);
        // The spec may have changed, or the pool shrunk, meanwhile: a member made otherwise, or not wanted, goes.
        const now = this.#specs.get(spec.name);
        if (now?.key === spec.key && this.#lack(now) > 0) this.#readyOf(spec.name).push({ id, name, key: spec.key });
        else await this.#discard(id);
        this.#backoff.delete(spec.name);
      } catch (error) {
        const before = this.#backoff.get(spec.name);
        const waitMs = before ? Math.min(before.ms * 2, 30_000) : (this.#o.retryMs ?? 1_000);
        this.#backoff.set(spec.name, { until: Date.now() + waitMs, ms: waitMs, key: spec.key });
        log.warn({ pool: spec.name, err: error, retryInMs: waitMs }, 'pool: could not make a member');
        if (id) await this.#discard(id);
      } finally {
        this.#starting = null;
      }
    }
  }

  /** Resolves once no refill is running (tests, and a clean stop). */
  async idle(): Promise<void> {
    while (this.#refilling) await this.#refilling;
  }
}
