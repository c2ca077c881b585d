import { isDhcpAddress, type ContainerView, type CreateContainerRequest } from '@unionize/protocol';
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
