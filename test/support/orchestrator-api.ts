import {
  HOOK_PEER, LEASE_EVENTS_PATH, OPERATOR_PEER, SignedClient, clientListSchema, loadServerTrust, peerKeyFile, readKeyFile, type ClientView, type SigningKey,
} from '@unionize/protocol';

/** The API's answers, as the contract (protocol's orchestrator-api.ts) describes them. */
export type { ClientDetail, ClientView, EventView } from '@unionize/protocol';

/**
 * A signed HTTPS client for the orchestrator API, as the tests and the demo
 * use it (protocol's SignedClient). It holds two peers' keys from the keys
 * directory and signs as the real peers do: lease events with the hook's key,
 * everything else with the operator's.
 */
export class OrchestratorApi {
  readonly #clients: SignedClient[];
  #preferred = 0;
  readonly hookKey: SigningKey;
  readonly operatorKey: SigningKey;

  /**
   * The server is verified by `caFile`, `pin` (sha256/...), or both (both must
   * hold), as the hook and the orchestrator do. `url`: one orchestrator, or a
   * pair's (a request goes on past one that is down or stands by, 503, as
   * orchestratorctl's do).
   */
  constructor(options: { url: string | readonly string[]; caFile?: string; pin?: string; keysDir: string; connections?: number }) {
    this.hookKey = readKeyFile(peerKeyFile(options.keysDir, HOOK_PEER))[0]!;
    this.operatorKey = readKeyFile(peerKeyFile(options.keysDir, OPERATOR_PEER))[0]!;
    const urls = typeof options.url === 'string' ? [options.url] : options.url;
    this.#clients = urls.map((url) => new SignedClient({
      url,
      trust: loadServerTrust({ ca: options.caFile, pin: options.pin }, 'OrchestratorApi'),
      key: this.operatorKey,
      ...(options.connections ? { connections: options.connections } : {}),
      idleTimeoutMs: 10_000,
      timeoutMs: 120_000,
      maxResponseBytes: 256 * 1024 * 1024,
    }));
  }

  /** Send a request; `sign: false` or a `key` of the test's choice are for tests of refusal. */
  async call(
    method: string,
    path: string,
    options: { body?: string; sign?: boolean; key?: SigningKey; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; json: any }> {
    const key = options.key ?? (method === 'POST' && path === LEASE_EVENTS_PATH ? this.hookKey : this.operatorKey);
    const ask = (client: SignedClient) => client.request({
      method,
      path,
      body: options.body ?? '',
      sign: options.sign === false ? false : key,
      // Explicit headers win (replays and forgeries in tests).
      headers: { 'content-type': 'application/json', ...options.headers },
    });
    let response: Awaited<ReturnType<typeof ask>> | undefined;
    let failure: unknown;
    for (let tried = 0; tried < this.#clients.length; tried++) {
      const index = (this.#preferred + tried) % this.#clients.length;
      try {
        response = await ask(this.#clients[index]!);
      } catch (error) {
        failure = error;
        continue;
      }
      if (response.status === 503 && tried < this.#clients.length - 1) continue;
      this.#preferred = index;
      break;
    }
    if (!response) throw failure;
    const json = response.json !== undefined || !response.text ? (response.json ?? null) : { notJson: response.text.slice(0, 200) };
    return { status: response.status, json };
  }

  async get<T = any>(path: string): Promise<T> {
    const { status, json } = await this.call('GET', path);
    if (status !== 200) throw new Error(`GET ${path}: ${status} ${JSON.stringify(json)}`);
    return json as T;
  }

  async clients(): Promise<ClientView[]> {
    return clientListSchema.parse(await this.get('/v1/clients')).clients;
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

  async close(): Promise<void> {
    await Promise.all(this.#clients.map((client) => client.close()));
  }
}
