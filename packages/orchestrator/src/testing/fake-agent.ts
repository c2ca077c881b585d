import { Readable } from 'node:stream';
import { KEPT_REPOSITORY, isDhcpAddress, type ContainerView, type CreateContainerRequest, type KeepContainerRequest, type KeepResult, type KeptImage, type PoolList, type PoolSpec } from '@unionize/protocol';
import type { AgentClient } from '../agents/agent-client.js';
import { AgentError } from '../agents/errors.js';

/** Test double for unit tests: an agent that keeps its containers in a map. */
export class FakeAgent implements AgentClient {
  readonly containers = new Map<string, ContainerView>();
  failNext = 0;
  down = false;
  creates = 0;
  /** The last create request per container name. */
  readonly requests = new Map<string, CreateContainerRequest>();
  /** dhcp addressing: whether the container already holds its lease when create returns. */
  leaseOnCreate = true;
  constructor(readonly name: string) {}

  async createContainer(request: CreateContainerRequest): Promise<ContainerView> {
    this.#check();
    if (this.failNext > 0) {
      this.failNext--;
      throw new AgentError('ORCH_AGENT_REFUSED', 'docker is down', { retryable: true });
    }
    this.creates++;
    this.requests.set(request.name, request);
    const existing = this.containers.get(request.name);
    const view: ContainerView = {
      name: request.name,
      id: existing?.id ?? `id-${request.name}`,
      image: request.image,
      state: 'running',
      labels: { ...request.labels, 'io.unionize.managed': 'true' },
      address: isDhcpAddress(request.address) ? (this.leaseOnCreate ? 'fd00:3::d1/128' : null) : request.address,
      mac: request.mac,
      createdAt: existing?.createdAt ?? new Date().toISOString(),
      // As a filtering agent answers: the device addresses it lets in.
      ...(request.deviceAddresses ? { deviceAddresses: [...request.deviceAddresses] } : {}),
    };
    this.containers.set(request.name, view);
    return view;
  }
  async deleteContainer(name: string): Promise<void> {
    this.#check();
    this.containers.delete(name);
  }
  async listContainers(): Promise<ContainerView[]> {
    this.#check();
    return [...this.containers.values()].map((v) => ({ ...v }));
  }
  /** The pools last asked for; each said to be full. */
  pools: PoolSpec[] = [];
  async setPools(pools: readonly PoolSpec[]): Promise<PoolList> {
    this.#check();
    this.pools = pools.map((p) => ({ ...p }));
    return { pools: this.pools.map((p) => ({ name: p.name, size: p.size, ready: p.size, starting: 0, claims: 0, misses: 0, lastRefillMs: null })), maxMembers: 32 };
  }
  /** Kept images by id, oldest first; each 1 MiB unless `keptSize` says otherwise. */
  readonly kept = new Map<string, KeptImage>();
  keptSize = 1024 * 1024;
  async keepContainer(name: string, request: KeepContainerRequest): Promise<KeepResult | null> {
    this.#check();
    if (!this.containers.has(name)) return null;
    const id = (this.kept.size + 1).toString(16).padStart(64, '0');
    const image = { image: `${KEPT_REPOSITORY}/${request.client}:${request.tag}`, id, client: request.client, hostname: request.hostname, profile: request.profile, sizeBytes: this.keptSize, createdAt: new Date().toISOString() };
    this.kept.set(id, image);
    const removed: KeptImage[] = [];
    let total = [...this.kept.values()].reduce((sum, k) => sum + k.sizeBytes, 0);
    for (const old of [...this.kept.values()]) {
      if (request.maxBytes === undefined || total <= request.maxBytes || old.id === id) continue;
      this.kept.delete(old.id);
      total -= old.sizeBytes;
      removed.push(old);
    }
    return { kept: image, removed };
  }
  async listKept(): Promise<KeptImage[]> {
    this.#check();
    return [...this.kept.values()];
  }
  async deleteKept(id: string): Promise<void> {
    this.#check();
    this.kept.delete(id);
  }
  /** What an export streams: the name of what was exported, as bytes. */
  async exportImage(what: { container: string } | { kept: string }): Promise<Readable | null> {
    this.#check();
    if ('container' in what) return this.containers.has(what.container) ? Readable.from([Buffer.from(`container ${what.container}`)]) : null;
    return this.kept.has(what.kept) ? Readable.from([Buffer.from(`kept ${what.kept}`)]) : null;
  }
  async health() {
    return !this.down;
  }
  async close() {}
  /** The container's env/labels as requested, for assertions. */
  view(name: string): ContainerView | undefined {
    return this.containers.get(name);
  }
  #check(): void {
    if (this.down) throw new AgentError('ORCH_AGENT_UNREACHABLE', `agent ${this.name} unreachable`, { retryable: true });
  }
}
