import { Agent, buildConnector, request } from 'undici';
import { loadServerTrust, readSecretFile, signRequest, tlsTrustOptions, verifyingConnector } from '@unionize/protocol';

export interface ClientView {
  id: string;
  duid: string;
  iaid: string;
  address: string;
  hostname: string | null;
  state: string;
  desired: 'running' | 'removed';
  stateReason: string;
  expiresAt: string | null;
  /** The profile its container was made from; null for the default. */
  profile: string | null;
  ttlExpiresAt: string | null;
  cooldownUntil: string | null;
  instance: { containerName: string; containerId: string; address: string; agent: string; mac: string; image: string; createdAt: string } | null;
}

/** A signed HTTPS client for the orchestrator API, as the tests and the demo use it. */
export class OrchestratorApi {
  readonly #base: URL;
  readonly #secret: Buffer;
  readonly #dispatcher: Agent;

  /** The server is verified by `caFile`, `pin` (sha256/...), or both (both must hold), as the hook and the orchestrator do. */
  constructor(options: { url: string; caFile?: string; pin?: string; secretFile: string; connections?: number }) {
    this.#base = new URL(options.url);
    this.#secret = readSecretFile(options.secretFile);
    const trust = loadServerTrust({ ca: options.caFile, pin: options.pin }, 'OrchestratorApi');
    const connector = buildConnector({ ...tlsTrustOptions(trust), ...(trust.pin ? { maxCachedSessions: 0 } : {}) });
    this.#dispatcher = new Agent({
      connect: verifyingConnector(connector, trust),
      ...(options.connections ? { connections: options.connections } : {}),
    });
  }

  /** Send a request; `sign: false` or a `secret` override are for tests of refusal. */
  async call(
    method: string,
    path: string,
    options: { body?: string; sign?: boolean; secret?: Buffer; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; json: any }> {
    const body = options.body ?? '';
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (options.sign !== false) {
      Object.assign(headers, signRequest({ secret: options.secret ?? this.#secret, method, path, body }));
    }
    // Explicit headers win (replays and forgeries in tests).
    Object.assign(headers, options.headers);
    const response = await request(new URL(path, this.#base), {
      method: method as 'GET',
      headers,
      body: body || undefined,
      dispatcher: this.#dispatcher,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await response.body.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = { notJson: text.slice(0, 200) };
    }
    return { status: response.statusCode, json };
  }

  async get<T = any>(path: string): Promise<T> {
    const { status, json } = await this.call('GET', path);
    if (status !== 200) throw new Error(`GET ${path}: ${status} ${JSON.stringify(json)}`);
    return json as T;
  }

  async clients(): Promise<ClientView[]> {
    return (await this.get<{ clients: ClientView[] }>('/v1/clients')).clients;
  }

  /** Wait until a client with this DUID satisfies `done`, polling; throws with its last state on timeout. */
  async waitForClient(duid: string, done: (c: ClientView) => boolean, timeoutMs = 30_000): Promise<ClientView> {
    const deadline = Date.now() + timeoutMs;
    let last: ClientView | undefined;
    for (;;) {
      last = (await this.clients()).find((c) => c.duid === duid);
      if (last && done(last)) return last;
      if (Date.now() > deadline) {
        throw new Error(`client ${duid}: not as expected after ${timeoutMs} ms (last: ${JSON.stringify(last ?? null)})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }
}
