import {
  LEADER_EPOCH_HEADER,
  SignedClient,
  SignedClientError,
  containerListSchema,
  containerViewSchema,
  keepResultSchema,
  keptImageListSchema,
  poolListSchema,
  readErrorBody,
  type ContainerView,
  type CreateContainerRequest,
  type KeepContainerRequest,
  type KeepResult,
  type KeptImage,
  type PoolList,
  type PoolSpec,
  type ServerTrust,
  type SignedResponse,
  type SigningKey,
} from '@unionize/protocol';
import type { Readable } from 'node:stream';
import { currentRequestId } from '../context/request-context.js';
import { AgentError } from './errors.js';

/** What the orchestrator needs from one unionize agent. */
export interface AgentClient {
  readonly name: string;
  /** Idempotent by name: an existing container is returned as it is. */
  createContainer(request: CreateContainerRequest): Promise<ContainerView>;
  /** Removes the container; resolves also when it did not exist. */
  deleteContainer(name: string): Promise<void>;
  listContainers(): Promise<ContainerView[]>;
  /** The warm pools it should keep (every one; PUT /v1/pools), and how they stand; null from an agent that has no pools (an older unionize: 404). */
  setPools(pools: readonly PoolSpec[]): Promise<PoolList | null>;
  /** Commits the container to a kept image (and prunes the oldest over `maxBytes`); null when there is no such container. */
  keepContainer(name: string, request: KeepContainerRequest): Promise<KeepResult | null>;
  listKept(): Promise<KeptImage[]>;
  /** Removes a kept image by id; resolves also when it did not exist. */
  deleteKept(id: string): Promise<void>;
  /** A live container, or a kept image (by id), as a gzipped `docker save` tarball, read as it comes; null when the agent has no such thing. */
  exportImage(what: { container: string } | { kept: string }): Promise<Readable | null>;
  health(): Promise<boolean>;
  close(): Promise<void>;
}

export interface HttpsAgentClientOptions {
  name: string;
  url: string;
  /** A CA, a certificate pin, or both (both must hold): `loadServerTrust` from the config. */
  trust: ServerTrust;
  /** This agent's own key (its `agent-NAME.keys`, the first key), read at each request so a rotation is picked up. */
  key: () => SigningKey;
  timeoutMs: number;
  /** Of a pair's leader: its epoch, sent with each request that changes something (LEADER_EPOCH_HEADER); undefined alone. */
  leaderEpoch?: () => number | undefined;
}

/**
 * AgentClient over protocol's SignedClient: kept-alive HTTPS connections,
 * each verified (CA, pin or both) before its first request, every request
 * signed with this agent's own key and carrying the current request id (the lease event or
 * operator request this call is made for: unionize logs it too).
 */
export class HttpsAgentClient implements AgentClient {
  readonly name: string;
  readonly #client: SignedClient;
  readonly #leaderEpoch: () => number | undefined;

  constructor(options: HttpsAgentClientOptions) {
    this.name = options.name;
    this.#leaderEpoch = options.leaderEpoch ?? (() => undefined);
    this.#client = new SignedClient({
      url: options.url,
      trust: options.trust,
      key: options.key,
      timeoutMs: options.timeoutMs,
      connectTimeoutMs: Math.min(options.timeoutMs, 10_000),
      // A list of 10,000 containers is about 5 MB.
      maxResponseBytes: 256 * 1024 * 1024,
      requestId: currentRequestId,
    });
  }

  async createContainer(body: CreateContainerRequest): Promise<ContainerView> {
    const response = await this.#call('POST', '/v1/containers', body);
    if (response.status !== 200 && response.status !== 201) throw this.#refused('POST /v1/containers', response);
    return containerViewSchema.parse(response.json);
  }

  async deleteContainer(name: string): Promise<void> {
    const path = `/v1/containers/${encodeURIComponent(name)}`;
    const response = await this.#call('DELETE', path);
    if (response.status !== 204 && response.status !== 404) throw this.#refused(`DELETE ${path}`, response);
  }

  async listContainers(): Promise<ContainerView[]> {
    const response = await this.#call('GET', '/v1/containers');
    if (response.status !== 200) throw this.#refused('GET /v1/containers', response);
    return containerListSchema.parse(response.json).containers;
  }

  async setPools(pools: readonly PoolSpec[]): Promise<PoolList | null> {
    const response = await this.#call('PUT', '/v1/pools', { pools });
    if (response.status === 404) return null;
    if (response.status !== 200) throw this.#refused('PUT /v1/pools', response);
    return poolListSchema.parse(response.json);
  }

  async keepContainer(name: string, body: KeepContainerRequest): Promise<KeepResult | null> {
    const path = `/v1/containers/${encodeURIComponent(name)}/keep`;
    const response = await this.#call('POST', path, body);
    if (response.status === 404) return null;
    if (response.status !== 201) throw this.#refused(`POST ${path}`, response);
    return keepResultSchema.parse(response.json);
  }

  async listKept(): Promise<KeptImage[]> {
    const response = await this.#call('GET', '/v1/kept');
    if (response.status !== 200) throw this.#refused('GET /v1/kept', response);
    return keptImageListSchema.parse(response.json).images;
  }

  async deleteKept(id: string): Promise<void> {
    const path = `/v1/kept/${encodeURIComponent(id)}`;
    const response = await this.#call('DELETE', path);
    if (response.status !== 204 && response.status !== 404) throw this.#refused(`DELETE ${path}`, response);
  }

  async exportImage(what: { container: string } | { kept: string }): Promise<Readable | null> {
    const path = 'container' in what ? `/v1/containers/${encodeURIComponent(what.container)}/export` : `/v1/kept/${encodeURIComponent(what.kept)}/export`;
    try {
      // The answer's headers wait for the commit; then the bytes come as Docker writes them.
      return (await this.#client.stream({ method: 'GET', path, timeoutMs: 10 * 60_000 })).body;
    } catch (cause) {
      if (cause instanceof SignedClientError && cause.kind === 'http') {
        if (cause.status === 404) return null;
        throw new AgentError('ORCH_AGENT_REFUSED', `agent ${this.name}: GET ${path}: ${cause.message}`, { cause, retryable: false });
      }
      throw new AgentError('ORCH_AGENT_UNREACHABLE', `agent ${this.name} unreachable: ${(cause as Error).message}`, { cause, retryable: true });
    }
  }

  async health(): Promise<boolean> {
    try {
      return (await this.#call('GET', '/healthz')).status === 200;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.#client.close();
  }

  async #call(method: string, path: string, json?: unknown): Promise<SignedResponse> {
    const epoch = method === 'GET' ? undefined : this.#leaderEpoch();
    try {
      return await this.#client.request({ method, path, json, ...(epoch === undefined ? {} : { headers: { [LEADER_EPOCH_HEADER]: String(epoch) } }) });
    } catch (cause) {
      if (cause instanceof SignedClientError && cause.kind === 'response') {
        throw new AgentError('ORCH_AGENT_REFUSED', `agent ${this.name}: ${method} ${path}: ${cause.message}`, { cause, retryable: false });
      }
      throw new AgentError('ORCH_AGENT_UNREACHABLE', `agent ${this.name} unreachable: ${(cause as Error).message}`, {
        cause,
        retryable: true,
      });
    }
  }

  #refused(what: string, response: SignedResponse): AgentError {
    const detail = readErrorBody(response.json) ?? (response.json === undefined && response.text ? { code: 'NOT_JSON', message: response.text.slice(0, 200) } : undefined);
    return new AgentError(
      'ORCH_AGENT_REFUSED',
      `agent ${this.name}: ${what} answered ${response.status}${detail ? ` ${detail.code}: ${detail.message}` : ''}`,
      { retryable: response.status >= 500 || response.status === 429 },
    );
  }
}
