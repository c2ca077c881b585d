import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { Agent, request, type RequestOptions } from 'node:https';
import type { Socket } from 'node:net';
import {
  containerListSchema,
  containerViewSchema,
  signRequest,
  verifiedConnection,
  type ContainerView,
  type CreateContainerRequest,
  type ServerTrust,
} from '@unionize/protocol';
import { REQUEST_ID_HEADER, currentRequestId } from '../context/request-id.js';
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

/**
 * Kept-alive HTTPS connections to one agent, each checked against the trust
 * (CA, pin or both) after its handshake and before its first request
 * (`verifiedConnection`). An idle connection is closed after 30 s, or before
 * the server's own keep-alive timeout when it announces one.
 */
class VerifiedAgent extends Agent {
  readonly #connect: ReturnType<typeof verifiedConnection>;

  constructor(trust: ServerTrust, connectTimeoutMs: number) {
    // A resumed session would show no certificate to compare with the pin.
    super({ keepAlive: true, timeout: 30_000, ...(trust.pin ? { maxCachedSessions: 0 } : {}) });
    this.#connect = verifiedConnection(trust, connectTimeoutMs);
  }

  // node's Agent takes a socket from createConnection's return value or, as here, from its callback.
  override createConnection(options: RequestOptions, callback?: (error: Error | null, socket: Socket) => void): Socket {
    return this.#connect(options, callback ?? (() => {})) as unknown as Socket;
  }
}

/**
 * AgentClient over HTTPS (node:https, keep-alive, CA- and/or pin-verified),
 * every request HMAC-signed. node's own client rather than undici: the same
 * calls, without a second HTTP stack (and its WebAssembly parser) in memory.
 */
export class HttpsAgentClient implements AgentClient {
  readonly name: string;
  readonly #base: URL;
  readonly #secret: Buffer;
  readonly #timeoutMs: number;
  readonly #agent: VerifiedAgent;

  constructor(options: HttpsAgentClientOptions) {
    this.name = options.name;
    this.#base = new URL(options.url);
    this.#secret = options.secret;
    this.#timeoutMs = options.timeoutMs;
    this.#agent = new VerifiedAgent(options.trust, Math.min(options.timeoutMs, 10_000));
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
    this.#agent.destroy();
    return Promise.resolve();
  }

  async #call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = signRequest({ secret: this.#secret, method, path, body: text });
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(text));
    }
    // The lease event (or operator request) this call is made for: unionize logs it too.
    const requestId = currentRequestId();
    if (requestId) headers[REQUEST_ID_HEADER] = requestId;
    try {
      const { status, raw } = await this.#send(method, path, headers, body === undefined ? undefined : text);
      let json: unknown = null;
      if (raw) {
        try {
          json = JSON.parse(raw);
        } catch {
          json = { error: { code: 'NOT_JSON', message: raw.slice(0, 200) } };
        }
      }
      return { status, json };
    } catch (cause) {
      throw new AgentError('ORCH_AGENT_UNREACHABLE', `agent ${this.name} unreachable: ${(cause as Error).message}`, {
        cause,
        retryable: true,
      });
    }
  }

  /**
   * One request; rejects when it cannot be made, or when no byte comes for
   * the timeout (headers or body). Written with `once` and the body's async
   * iterator, whose listeners go when they are done: a kept-alive socket keeps
   * its last request (and that request its listeners) until the next one, and a
   * listener holding this promise would keep the whole last body (a list of
   * 10,000 containers is 5 MB) alive with it.
   */
  async #send(method: string, path: string, headers: Record<string, string>, body: string | undefined): Promise<{ status: number; raw: string }> {
    const req = request(new URL(path, this.#base), { method, headers, agent: this.#agent });
    // Errors reach us through `once` and the body's iterator; this one only keeps a late one from being unhandled.
    req.on('error', ignore);
    req.setTimeout(this.#timeoutMs, () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
    req.end(body);
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return { status: res.statusCode ?? 0, raw: Buffer.concat(chunks).toString('utf8') };
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

function ignore(): void {}
