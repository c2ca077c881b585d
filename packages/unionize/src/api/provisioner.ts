import { performance } from 'node:perf_hooks';
import { LABELS, isDhcpAddress, type ContainerView, type CreateContainerRequest } from '@unionize/protocol';
import type { Logger } from 'pino';
import type { AttachResult, AttachTarget, Attacher } from '../attach/native.js';
import { OWN_LABELS, type ContainerInfo, type DockerClient } from '../docker/docker-client.js';
import { hostVethName } from '../attach/plan.js';
import { AttachError, DockerError, UnionizeError } from '../errors.js';
import type { Isolation } from '../isolation/isolation.js';
import type { WarmPool } from '../pool/warm-pool.js';
import { parseCidr, sameAddress } from '../net/ipv6.js';
import { KeyedMutex } from '../util/keyed-mutex.js';

/**
 * What the API does, without HTTP: make a container exist, run and be attached
 * (idempotent by name), list, remove. One name is handled by one task at a time.
 */

export interface ProvisionerDeps {
  docker: DockerClient;
  attacher: Attacher;
  log: Logger;
  /** Who may reach which container; none: no filter (unit tests of other parts). */
  isolation?: Isolation;
  /** Warm pools a request's `pool` may claim from; none: every container is made cold. */
  pool?: WarmPool;
}

export interface EnsureResult {
  view: ContainerView;
  /** false when the container already ran attached: nothing was done. */
  changed: boolean;
}

/** States `docker start` takes a container out of. */
const STARTABLE = new Set(['created', 'exited']);

/** How often a DHCP container whose lease is pending is looked at for the filter. */
const LEASE_WATCH_INTERVAL_MS = 250;

/** How many containers GET /v1/containers inspects at once. */
const LIST_CONCURRENCY = 8;

const ms = (since: number) => Math.round(performance.now() - since);

export function isManaged(info: ContainerInfo): boolean {
  return info.labels[OWN_LABELS.managed] === 'true';
}

/**
 * `address` only once eth1 is verified to hold it (DHCP mode: the leased
 * address, passed as `address`, once known); `mac` is what the container was made with.
 */
export function toView(info: ContainerInfo, attached: boolean, address?: string | null, deviceAddresses?: readonly string[]): ContainerView {
  return {
    ...(deviceAddresses ? { deviceAddresses: [...deviceAddresses] } : {}),
    name: info.name,
    id: info.id,
    image: info.image,
    state: info.state,
    labels: info.labels,
    address: attached ? (address === undefined ? (info.labels[OWN_LABELS.address] ?? null) : address) : null,
    mac: info.labels[OWN_LABELS.mac] ?? null,
    createdAt: info.createdAt,
  };
}

function targetOf(info: ContainerInfo): AttachTarget | null {
  const mac = info.labels[OWN_LABELS.mac];
  const address = info.labels[OWN_LABELS.address];
  if (!mac || !address || info.pid <= 0) return null;
  return { name: info.name, pid: info.pid, mac, address };
}

function sameCidr(a: string, b: string): boolean {
  if (isDhcpAddress(a) || isDhcpAddress(b)) return a === b;
  try {
    const x = parseCidr(a);
    const y = parseCidr(b);
    return x.prefixLength === y.prefixLength && sameAddress(x.address, y.address);
  } catch {
    return false;
  }
}

/** An existing container answers for a request only if we made it, and made it the same way. */
function checkSame(info: ContainerInfo, req: CreateContainerRequest): void {
  if (!isManaged(info)) {
    throw new UnionizeError('NAME_CONFLICT', `container ${req.name} exists and is not managed by unionize; not touching it`);
  }
  const differences: string[] = [];
  if (info.image !== req.image) differences.push(`image ${info.image}`);
  if (info.labels[OWN_LABELS.mac] !== req.mac) differences.push(`mac ${info.labels[OWN_LABELS.mac] ?? 'none'}`);
  if (!sameCidr(info.labels[OWN_LABELS.address] ?? '', req.address)) {
    differences.push(`address ${info.labels[OWN_LABELS.address] ?? 'none'}`);
  }
  if (differences.length > 0) {
    throw new UnionizeError('CONTAINER_MISMATCH', `container ${req.name} exists with ${differences.join(', ')}; DELETE it first`);
  }
}

export class Provisioner {
  readonly #docker: DockerClient;
  readonly #attacher: Attacher;
  readonly #log: Logger;
  readonly #isolation: Isolation | undefined;
  readonly #pool: WarmPool | undefined;
  readonly #locks = new KeyedMutex();
  /** Container requests in progress (the pool's refills wait for them). */
  #ensuring = 0;
  /** DHCP containers whose lease is awaited for the filter (#watchLease). */
  readonly #watching = new Set<string>();

  constructor(deps: ProvisionerDeps) {
    this.#docker = deps.docker;
    this.#attacher = deps.attacher;
    this.#log = deps.log;
    this.#isolation = deps.isolation?.filtering ? deps.isolation : undefined;
    this.#pool = deps.pool;
  }

  /** Container requests in progress now. */
  get ensuring(): number {
    return this.#ensuring;
  }

  /** A claimed pool member with its claim's labels; anything else as it is. */
  async #inspect(name: string): Promise<ContainerInfo | null> {
    const info = await this.#docker.inspectByName(name);
    return info && this.#pool ? this.#pool.withClaim(info) : info;
  }

  /** The device addresses the filter lets reach this container, for its view; undefined without a filter. */
  #allowed(name: string): readonly string[] | undefined {
    return this.#isolation ? (this.#isolation.entry(name)?.devices ?? []) : undefined;
  }

  /**
   * Who may reach the container: the request's device addresses (older
   * orchestrators send none: the device-address label). Set before attach, so
   * its port is cut off from the others' before it joins the bridge.
   */
  async #isolate(name: string, devices: readonly string[], container: string | null): Promise<void> {
    if (!this.#isolation) return;
    await this.#isolation.set(name, { devices, container, port: hostVethName(name) });
  }

  async ensure(req: CreateContainerRequest, log: Logger = this.#log): Promise<EnsureResult> {
    this.#ensuring++;
    try {
      return await this.#locks.run(req.name, () => this.#ensure(req, log.child({ container: req.name })));
    } finally {
      this.#ensuring--;
    }
  }

  async #ensure(req: CreateContainerRequest, log: Logger): Promise<EnsureResult> {
    const started = performance.now();
    const timings: Record<string, number> = {};
    let changed = false;

    let info = await this.#inspect(req.name);
    if (info && this.#pool?.needsRecord(info)) info = await this.#pool.recordClaim(info, req);
    if (info) checkSame(info, req);
    const devices = req.deviceAddresses ?? [req.labels[LABELS.deviceAddress] ?? ''].filter(Boolean);
    const dhcp = isDhcpAddress(req.address);
    const previous = this.#isolation?.entry(req.name);
    const known = previous?.container ?? null;
    // The filter is written while Docker creates and starts the container (nft takes 30-40 ms under
    // load: a lease's time to ready, otherwise spent in turn); attach still waits for it below.
    const isolating = this.#isolate(req.name, devices, dhcp ? known : parseCidr(req.address).address);
    isolating.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled meanwhile
    // No container to reach: the filter goes back to what it was (none, or the devices let in before).
    const restoreFilter = async () => {
      await isolating.catch(() => undefined);
      if (!this.#isolation) return;
      await (previous ? this.#isolation.set(req.name, previous) : this.#isolation.forget(req.name)).catch((error: unknown) => {
        log.error({ err: error }, 'could not restore the filter after a failed create or start');
      });
    };
    let target: AttachTarget | null;
    /** A claimed member is attached while it is renamed (WarmPool.claim). */
    let attached: AttachResult | undefined;
    try {
      if (!info && this.#pool) {
        const t = performance.now();
        info = await this.#pool.claim(req, log, async (member) => {
          const claimed = targetOf(member);
          if (!claimed) throw new AttachError(`attach ${req.name}: claimed member has no pid or no mac/address`);
          await isolating;
          const a = performance.now();
          attached = await this.#attacher.attach(claimed);
          timings.attachMs = ms(a);
        });
        if (info) {
          timings.claimMs = ms(t);
          changed = true;
        } else {
          // A claim given up: its member (and any attach of it) is gone; the cold container is attached below.
          attached = undefined;
          delete timings.attachMs;
        }
      }
      if (!info) {
        const t = performance.now();
        info = await this.#create(req);
        timings.createMs = ms(t);
        changed = true;
      }
      if (info.state !== 'running') {
        if (!STARTABLE.has(info.state)) {
          throw new UnionizeError('CONTAINER_STATE', `container ${req.name} is ${info.state}; DELETE it first`);
        }
        const t = performance.now();
        await this.#docker.start(info.id);
        // The PID is taken here, right before attaching (start does not return it).
        info = await this.#runningOrThrow(req.name, info.id);
        timings.startMs = ms(t);
        changed = true;
      }
      target = targetOf(info);
      if (!target) throw new AttachError(`attach ${req.name}: container has no pid or no mac/address labels`);
    } catch (error) {
      await restoreFilter();
      throw error;
    }
    await isolating;
    const t = performance.now();
    const result = attached ?? (await this.#attacher.attach(target));
    if (!attached) timings.attachMs = ms(t);
    const after = await this.#sameContainerOrThrow(info);
    changed ||= result.changed;
    // DHCP mode: the leased address, or null while the lease is pending (the client keeps trying).
    const address = dhcp ? (result.address ?? null) : undefined;
    if (address) await this.#isolate(req.name, devices, parseCidr(address).address);
    else if (address === null) this.#watchLease(after, target);
    const extra = address === undefined ? {} : { address };
    log.info({ ...timings, totalMs: ms(started), spawns: result.spawns, changed, ...extra }, changed ? 'container ready' : 'container already ready');
    return { view: toView(after, true, address, this.#allowed(req.name)), changed };
  }

  /** Create; if someone else created the name meanwhile, take theirs through the same checks. */
  async #create(req: CreateContainerRequest): Promise<ContainerInfo> {
    let id: string;
    try {
      id = await this.#docker.create(req);
    } catch (error) {
      if (!(error instanceof DockerError) || error.dockerStatus !== 409) throw error;
      const existing = await this.#docker.inspectByName(req.name);
      if (!existing) throw error;
      checkSame(existing, req);
      return existing;
    }
    // Only id and state are read before the post-start inspect: spare a round trip.
    return { id, name: req.name, image: req.image, state: 'created', pid: 0, labels: {}, createdAt: new Date().toISOString() };
  }

  async #runningOrThrow(name: string, id: string): Promise<ContainerInfo> {
    const info = await this.#inspect(name);
    if (!info || info.id !== id) throw new AttachError(`attach ${name}: container was removed or replaced right after start`);
    if (info.state !== 'running' || info.pid <= 0) {
      throw new AttachError(`attach ${name}: container is ${info.state} right after start; nothing to attach (check its image and command)`);
    }
    return info;
  }

  /** The namespace we configured is the container's only if it is still the same process (ARCHITECTURE.md, pitfalls). */
  async #sameContainerOrThrow(before: ContainerInfo): Promise<ContainerInfo> {
    const after = await this.#inspect(before.name);
    if (!after || after.id !== before.id) throw new AttachError(`attach ${before.name}: container was removed or replaced during attach`);
    if (after.state !== 'running' || after.pid !== before.pid) {
      throw new AttachError(
        `attach ${before.name}: container restarted or stopped during attach (pid ${before.pid}, now ${after.state} pid ${after.pid}); try again`,
      );
    }
    return after;
  }

  /** Managed containers by name; `address` set only for running ones whose eth1 checks out. */
  async list(): Promise<ContainerView[]> {
    // Unclaimed pool members are nobody's containers yet.
    const containers = (await this.#docker.listManaged()).filter((c) => !this.#pool?.isMember(c)).sort((a, b) => a.name.localeCompare(b.name));
    const views: Array<ContainerView | null> = new Array(containers.length).fill(null);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < containers.length; i = next++) {
        const summary = containers[i]!;
        if (summary.state !== 'running') {
          views[i] = toView(this.#pool ? await this.#pool.withClaim(summary) : summary, false);
          continue;
        }
        // The list carries no PID: inspect to check eth1. Gone meanwhile: leave it out.
        const info = await this.#inspect(summary.name);
        if (!info || !isManaged(info)) continue;
        const target = targetOf(info);
        const address = target === null ? null : await this.#attacher.addressOf(target);
        await this.#learn(info, address);
        views[i] = toView(info, address !== null, address, this.#allowed(info.name));
      }
    };
    await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, containers.length) }, worker));
    await this.#forgetGone(new Set(containers.map((c) => c.name)));
    return views.filter((v): v is ContainerView => v !== null);
  }

  /**
   * What a listing teaches the filter: a container it does not know yet (made
   * before this process started) gets its device-address label until the
   * orchestrator says more; a DHCP container's address once leased, or anew.
   */
  async #learn(info: ContainerInfo, address: string | null): Promise<void> {
    if (!this.#isolation) return;
    const entry = this.#isolation.entry(info.name);
    const container = address === null ? (entry?.container ?? null) : parseCidr(address).address;
    const devices = entry?.devices ?? [info.labels[LABELS.deviceAddress] ?? ''].filter(Boolean);
    if (entry && entry.container === container) return;
    // Under the name's lock: an ensure or remove in progress has the last word.
    await this.#locks.run(info.name, async () => {
      const now = this.#isolation!.entry(info.name);
      if (now ? now.container === container || (address === null && now.container !== null) : false) return;
      if (!now && !(await this.#docker.inspectByName(info.name))) return;
      await this.#isolate(info.name, now?.devices ?? devices, container);
    });
  }

  /**
   * DHCP addressing, lease still pending when the create was answered: the
   * device is let in as soon as eth1 holds the lease, not at the next listing.
   * Stops once the address is known (here, or by a listing or a later
   * request) or the container is forgotten (removed).
   */
  #watchLease(info: ContainerInfo, target: AttachTarget): void {
    const isolation = this.#isolation;
    if (!isolation || this.#watching.has(info.name)) return;
    this.#watching.add(info.name);
    const pending = () => isolation.entry(info.name)?.container === null;
    void (async () => {
      for (let round = 1; pending(); round++) {
        await new Promise((resolve) => setTimeout(resolve, LEASE_WATCH_INTERVAL_MS).unref());
        const address = await this.#attacher.addressOf(target);
        if (address !== null && pending()) {
          await this.#learn(info, address);
          this.#log.info({ container: info.name, address }, 'isolation: leased address let in');
        }
        // Now and then: the same process still runs (a restarted container gets a request, and a watch, of its own).
        if (round % 40 === 0) {
          const now = await this.#docker.inspectByName(info.name);
          if (now?.id !== info.id || now.pid !== info.pid || now.state !== 'running') return;
        }
      }
    })()
      .catch((error: unknown) => this.#log.warn({ container: info.name, err: error }, 'isolation: the leased address could not be let in; the next listing tries again'))
      .finally(() => this.#watching.delete(info.name));
  }

  /** Containers removed behind our back (docker rm): their pairs go, or a reused address would let the old device in. */
  async #forgetGone(listed: ReadonlySet<string>): Promise<void> {
    if (!this.#isolation) return;
    for (const name of this.#isolation.names()) {
      if (listed.has(name)) continue;
      await this.#locks.run(name, async () => {
        const info = await this.#docker.inspectByName(name);
        if (!info || !isManaged(info)) await this.#isolation!.forget(name);
      });
    }
  }

  /** At start: the filter from the containers this engine runs (their labels; the orchestrator's next requests refine it). */
  async restoreIsolation(): Promise<void> {
    if (this.#isolation) await this.#isolation.batch(() => this.list());
  }

  /** false when there is no managed container of that name. */
  remove(name: string, log: Logger = this.#log): Promise<boolean> {
    return this.#locks.run(name, async () => {
      const info = await this.#docker.inspectByName(name);
      if (!info || !isManaged(info)) return false;
      // The device loses access before its container goes (an address reused later must not let it in).
      await this.#isolation?.forget(name);
      if (!(await this.#docker.remove(info.id))) return false;
      await this.#pool?.forget(info.id).catch((error: unknown) => log.warn({ container: name, err: error }, 'pool: claim record not removed; the next restore removes it'));
      try {
        await this.#attacher.detach(name);
      } catch (error) {
        // The kernel drops the veth with the namespace anyway; only later than we would.
        log.warn({ container: name, err: error }, 'host veth not removed');
      }
      log.info({ container: name, id: info.id }, 'container removed');
      return true;
    });
  }
}
