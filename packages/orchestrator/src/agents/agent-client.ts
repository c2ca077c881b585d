import { Agent, buildConnector, request } from 'undici';
import {
  containerListSchema,
  containerViewSchema,
  signRequest,
  tlsTrustOptions,
  verifyingConnector,
  type ContainerView,
  type CreateContainerRequest,
  type ServerTrust,
} from '@unionize/protocol';
import { REQUEST_ID_HEADER, currentRequestId } from '../api/request-id.js';
import { AgentError } from './errors.js';

/** What the orchestrator needs from one unionize agent. */
export interface AgentClient {
  readonly name: string;
  /** Idempotent by name: an existing container is returned as it is. */
  createContainer(request: CreateContainerRequest): Promise<ContainerView>;
  /** Removes the container; resolves also when it did not exist. */
  deleteContainer(name: string): Promise<void>;
  listContainers(): Promise<ContainerView[]>;
  health(): Promise<boolean>;
  close(): Promise<void>;
}

export interface HttpsAgentClientOptions {
  name: string;
  url: string;
  /** A CA, a certificate pin, or both (both must hold): `loadServerTrust` from the config. */
  trust: ServerTrust;
  secret: Buffer;
  timeoutMs: number;
}

/** AgentClient over HTTPS (undici, keep-alive, CA- and/or pin-verified), every request HMAC-signed. */
export class HttpsAgentClient implements AgentClient {
  readonly name: string;
  readonly #base: URL;
  readonly #secret: Buffer;
  readonly #timeoutMs: number;
  readonly #dispatcher: Agent;

  constructor(options: HttpsAgentClientOptions) {
    this.name = options.name;
    this.#base = new URL(options.url);
    this.#secret = options.secret;
    this.#timeoutMs = options.timeoutMs;
    const connector = buildConnector({
      ...tlsTrustOptions(options.trust),
      timeout: Math.min(options.timeoutMs, 10_000),
      // A resumed session would show no certificate to compare with the pin.
      ...(options.trust.pin ? { maxCachedSessions: 0 } : {}),
    });
    this.#dispatcher = new Agent({ connect: verifyingConnector(connector, options.trust), keepAliveTimeout: 30_000 });
  }

  async createContainer(body: CreateContainerRequest): Promise<ContainerView> {
    const { status, json } = await this.#call('POST', '/v1/containers', body);
    if (status !== 200 && status !== 201) throw this.#refused('POST /v1/containers', status, json);
    return containerViewSchema.parse(json);
  }

  async deleteContainer(name: string): Promise<void> {
    const path = `/v1/containers/${encodeURIComponent(name)}`;
    const { status, json } = await this.#call('DELETE', path);
    if (status !== 204 && status !== 404) throw this.#refused(`DELETE ${path}`, status, json);
  }

  async listContainers(): Promise<ContainerView[]> {
    const { status, json } = await this.#call('GET', '/v1/containers');
    if (status !== 200) throw this.#refused('GET /v1/containers', status, json);
    return containerListSchema.parse(json).containers;
  }

  async health(): Promise<boolean> {
    try {
      const { status } = await this.#call('GET', '/healthz');
      return status === 200;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }

  async #call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = signRequest({ secret: this.#secret, method, path, body: text });
    if (body !== undefined) headers['content-type'] = 'application/json';
    // The lease event (or operator request) this call is made for: unionize logs it too.
    const requestId = currentRequestId();
    if (requestId) headers[REQUEST_ID_HEADER] = requestId;
    try {
      const response = await request(new URL(path, this.#base), {
        method: method as 'GET' | 'POST' | 'DELETE',
        headers,
        body: body === undefined ? undefined : text,
        dispatcher: this.#dispatcher,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
      const raw = await response.body.text();
      let json: unknown = null;
      if (raw) {
        try {
          json = JSON.parse(raw);
        } catch {
          json = { error: { code: 'NOT_JSON', message: raw.slice(0, 200) } };
        }
      }
      return { status: response.statusCode, json };
    } catch (cause) {
      throw new AgentError('ORCH_AGENT_UNREACHABLE', `agent ${this.name} unreachable: ${(cause as Error).message}`, {
        cause,
        retryable: true,
      });
    }
  }

  #refused(what: string, status: number, json: unknown): AgentError {
    const detail = (json as { error?: { code?: string; message?: string } } | null)?.error;
    return new AgentError(
      'ORCH_AGENT_REFUSED',
      `agent ${this.name}: ${what} answered ${status}${detail ? ` ${detail.code}: ${detail.message}` : ''}`,
      { retryable: status >= 500 || status === 429 },
    );
  }
}
