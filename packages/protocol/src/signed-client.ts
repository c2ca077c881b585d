import { once } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Agent, request, type RequestOptions } from 'node:https';
import type { Socket } from 'node:net';
import { SIGNED_BEFORE_START, signRequest } from './hmac.js';
import type { SigningKey } from './keys.js';
import { verifiedConnection, type ServerTrust } from './tls-pin.js';

/**
 * The one HMAC-signed HTTPS client: the hook's delivery, the orchestrator's
 * agent client, `orchestratorctl` and the tests' client all send through it.
 *
 * Transport: node:https, not undici (README, Dependencies). The hook is
 * bundled and started by dnsmasq (undici would be most of its bundle and of
 * its start-up), and the orchestrator keeps no second HTTP stack and
 * WebAssembly parser in memory (12ce3c9: ~5 MB of RSS). undici spends about
 * half the CPU per request (65 against 130-200 µs at 32 in flight, measured
 * here), which only a load generator sends enough requests to notice.
 *
 * Every connection is checked against the trust (CA, pin or both:
 * `verifiedConnection`) after its handshake and before its first request, so
 * not one byte of a signed request goes to the wrong server; connections are
 * kept alive and pooled (`connections` at most). A request is signed when it
 * is sent (again if it is sent twice) with the client's key: method,
 * authority, path, query, body digest, time, nonce and key id (hmac.ts).
 */

/** The request id header: the lease event's id, from the hook through the orchestrator to the agent. */
export const REQUEST_ID_HEADER = 'x-request-id';

export interface SignedClientOptions {
  /** The server's origin, e.g. `https://[fd00::1]:8443`; paths are resolved against it. */
  url: string;
  /** A CA, a certificate pin, or both (both must hold): `loadServerTrust`. */
  trust: ServerTrust;
  /** The key to sign with, or where to get it at each request (a KeyFile's `signingKey`, so a rotation is picked up). */
  key: SigningKey | (() => SigningKey);
  /** Most connections open at once; requests beyond wait for a free one. Default: no limit. */
  connections?: number;
  /** false: one connection per request, closed after it (a short-lived process). Default true. */
  keepAlive?: boolean;
  /** A free kept-alive connection is closed after this long (or before the server's own keep-alive timeout). Default 30 s. */
  keepAliveMs?: number;
  /** TCP connect and TLS handshake. Default 10 s. */
  connectTimeoutMs?: number;
  /** The whole exchange: connection, request, the answer's headers and body. Default 30 s; 0: none. */
  timeoutMs?: number;
  /** No byte from the server for this long: given up. Default: none (the total timeout only). */
  idleTimeoutMs?: number;
  /** A larger answer is refused (`RESPONSE_TOO_LARGE`) and its connection closed. Default 16 MiB. */
  maxResponseBytes?: number;
  /** Where a request's id comes from when the request gives none (e.g. an AsyncLocalStorage). */
  requestId?: () => string | undefined;
  /**
   * A request refused as signed before the server started (401
   * SIGNED_BEFORE_START: the server has just restarted and this clock is a
   * little behind its) is signed anew and sent again after 1 s, this many
   * times at most and within the request's timeout; then its 401 is the
   * answer. Default 3.
   */
  beforeStartRetries?: number;
}

export interface SignedRequest {
  method: string;
  /** Path with its query, e.g. `/v1/clients?state=ready`. */
  path: string;
  /** Sent as JSON (`content-type: application/json`). */
  json?: unknown;
  /** Or a body as it is (already JSON, or a test's malformed one). */
  body?: string;
  /** Added after the signature: they win (a test's forgeries and replays). */
  headers?: Record<string, string>;
  /** false: not signed (tests of refusal); a key: signed with it instead. */
  sign?: false | SigningKey;
  /** `x-request-id`; defaults to the client's `requestId()`. */
  requestId?: string;
  timeoutMs?: number;
  /** No byte for this long: given up; default the client's (a long piece of work answered at its end needs more). */
  idleTimeoutMs?: number;
  maxResponseBytes?: number;
}

/** A 2xx answer whose body is read by the caller, as it comes (`SignedClient.stream`). */
export interface SignedStream {
  status: number;
  headers: IncomingHttpHeaders;
  /** Read it to its end, or destroy it: the connection is held until then. */
  body: IncomingMessage;
}

export interface SignedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  json: unknown;
}

/**
 * `network`: no answer (refused, reset, TLS or pin refused, timed out);
 * `http`: an answer whose status the caller does not take (`status`, and the
 * server's `{ error: { code, message } }` when it sent one);
 * `response`: an answer that cannot be taken (larger than the limit).
 */
export type SignedClientErrorKind = 'network' | 'http' | 'response';

export class SignedClientError extends Error {
  readonly kind: SignedClientErrorKind;
  /** The server's error code for `http` (or `HTTP_<status>` without one); node's or ours otherwise (`ECONNREFUSED`, `ERR_TLS_PIN_MISMATCH`, `ERR_TIMEOUT` (the whole answer), `ERR_IDLE_TIMEOUT` (no byte for `idleTimeoutMs`), `ERR_CONNECT_TIMEOUT`, `RESPONSE_TOO_LARGE`). */
  readonly code: string;
  readonly status: number | undefined;
  /** The server's error message (`http`), when it sent one. */
  readonly serverMessage: string | undefined;
  /** The answer, for `http`. */
  readonly response: SignedResponse | undefined;

  constructor(
    kind: SignedClientErrorKind,
    code: string,
    message: string,
    extra: { status?: number; serverMessage?: string; response?: SignedResponse; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'SignedClientError';
    this.kind = kind;
    this.code = code;
    this.status = extra.status;
    this.serverMessage = extra.serverMessage;
    this.response = extra.response;
  }
}

/** The server's `{ error: { code, message } }`, when the body is one. */
export function readErrorBody(json: unknown): { code: string; message: string } | undefined {
  const error = (json as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error;
  if (!error || typeof error.code !== 'string') return undefined;
  return { code: error.code, message: typeof error.message === 'string' ? error.message : '' };
}

/** An `http` error for an answer the caller does not take: "<what> answered <status> <code>: <message>". */
export function httpError(what: string, response: SignedResponse): SignedClientError {
  const detail = readErrorBody(response.json);
  const said = detail ? `${detail.code}: ${detail.message}` : response.text.slice(0, 200);
  return new SignedClientError('http', detail?.code ?? `HTTP_${response.status}`, `${what} answered ${response.status}${said ? ` ${said}` : ''}`, {
    status: response.status,
    ...(detail ? { serverMessage: detail.message } : {}),
    response,
  });
}

/**
 * Kept-alive (or not) HTTPS connections to one server, each verified before
 * its first request. A resumed TLS session would show no certificate to
 * compare with a pin: none are cached when there is one.
 */
class VerifiedAgent extends Agent {
  readonly #connect: ReturnType<typeof verifiedConnection>;

  constructor(trust: ServerTrust, options: { keepAlive: boolean; keepAliveMs: number; connections: number; connectTimeoutMs: number }) {
    super({
      keepAlive: options.keepAlive,
      timeout: options.keepAliveMs,
      maxSockets: options.connections,
      ...(trust.pin ? { maxCachedSessions: 0 } : {}),
    });
    this.#connect = verifiedConnection(trust, options.connectTimeoutMs);
  }

  // node's Agent takes the socket from createConnection's callback (as here) or its return value.
  override createConnection(options: RequestOptions, callback?: (error: Error | null, socket: Socket) => void): Socket {
    return this.#connect(options, callback ?? (() => {})) as unknown as Socket;
  }
}

const MIB = 1024 * 1024;

/** Errors of a kept-alive connection that the server had closed: the request never reached it. */
const staleSocket = new WeakSet<Error>();

export class SignedClient {
  readonly origin: string;
  readonly #base: URL;
  readonly #key: () => SigningKey;
  readonly #agent: VerifiedAgent;
  readonly #timeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #requestId: (() => string | undefined) | undefined;
  readonly #connections: number;
  readonly #beforeStartRetries: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(options: SignedClientOptions) {
    this.#base = new URL(options.url);
    this.origin = this.#base.origin;
    const key = options.key;
    this.#key = typeof key === 'function' ? key : () => key;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 0;
    this.#maxResponseBytes = options.maxResponseBytes ?? 16 * MIB;
    this.#requestId = options.requestId;
    this.#connections = options.connections ?? Infinity;
    this.#beforeStartRetries = options.beforeStartRetries ?? 3;
    this.#agent = new VerifiedAgent(options.trust, {
      keepAlive: options.keepAlive ?? true,
      keepAliveMs: options.keepAliveMs ?? 30_000,
      connections: this.#connections,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    });
  }

  /**
   * Send one request and read its whole answer, whatever its status; rejects
   * with a SignedClientError (`network` or `response`) when there is no
   * answer to read. A kept-alive connection the server closed while it was
   * free fails at once when reused: such a request is sent once more (signed
   * anew) on a new connection, as node's http docs advise. One refused as
   * signed before the server started is signed anew and sent again
   * (`beforeStartRetries`).
   */
  async request(input: SignedRequest): Promise<SignedResponse> {
    // The timeout bounds the whole exchange, these retries included (the hook's budget).
    const timeoutMs = input.timeoutMs ?? this.#timeoutMs;
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
    let response = await this.#requestOnce(input);
    for (let retry = 0; retry < this.#beforeStartRetries && signedBeforeStart(response) && Date.now() + 1000 < deadline; retry++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      response = await this.#requestOnce(deadline === Infinity ? input : { ...input, timeoutMs: Math.max(1, deadline - Date.now()) });
    }
    return response;
  }

  async #requestOnce(input: SignedRequest): Promise<SignedResponse> {
    // node's Agent counts a connection only once it is made (ours are made
    // asynchronously, verified before use), so it would open one for every
    // request waiting meanwhile: the pool's size is kept here. A request done
    // hands its place to the next waiting one.
    if (this.#active < this.#connections) this.#active++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await this.#attempt(input);
    } catch (error) {
      if (!staleSocket.has(error as Error)) throw error;
      return await this.#attempt(input);
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }

  /** A request whose answer must be 2xx: its JSON, or an `http` SignedClientError. */
  async call<T = unknown>(input: SignedRequest): Promise<T> {
    const response = await this.request(input);
    if (response.status < 200 || response.status > 299) throw httpError(`${input.method} ${input.path}`, response);
    return response.json as T;
  }

  /** Closes every connection; requests in flight fail. */
  close(): Promise<void> {
    this.#agent.destroy();
    return Promise.resolve();
  }

  /**
   * Send one request, signed as `request` signs, and hand back a 2xx answer's
   * body unread, for a download too large to hold (an export): nothing of it
   * is buffered here. `timeoutMs` bounds the wait for the answer's headers;
   * then `idleTimeoutMs` (default 60 s) bounds each wait for the next bytes.
   * Any other status: its (small) body is read and an `http` SignedClientError thrown.
   */
  async stream(input: SignedRequest & { idleTimeoutMs?: number }): Promise<SignedStream> {
    if (this.#active < this.#connections) this.#active++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    const release = () => {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    };
    let res: IncomingMessage;
    try {
      const { url, headers, body } = this.#signed(input);
      const req = request(url, { method: input.method, headers, agent: this.#agent });
      req.on('error', ignore);
      const timeoutMs = input.timeoutMs ?? this.#timeoutMs;
      const timer = timeoutMs > 0 ? setTimeout(() => req.destroy(new SignedClientError('network', 'ERR_TIMEOUT', `no answer within ${timeoutMs} ms`)), timeoutMs) : undefined;
      req.end(body || undefined);
      try {
        [res] = (await once(req, 'response')) as [IncomingMessage];
      } catch (error) {
        throw error instanceof SignedClientError ? error : networkError(error, false);
      } finally {
        clearTimeout(timer);
      }
      const idleMs = input.idleTimeoutMs ?? 60_000;
      req.setTimeout(idleMs, () => res.destroy(new SignedClientError('network', 'ERR_IDLE_TIMEOUT', `no byte within ${idleMs} ms (idle)`)));
    } catch (error) {
      release();
      throw error;
    }
    res.once('close', release);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status <= 299) return { status, headers: res.headers, body: res };
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > 64 * 1024) break;
      chunks.push(chunk as Buffer);
    }
    res.destroy();
    const text = Buffer.concat(chunks).toString('utf8');
    throw httpError(`${input.method} ${input.path}`, { status, headers: res.headers, text, json: parseJson(text) });
  }

  /** The URL, the signed headers and the body of a request. */
  #signed(input: SignedRequest): { url: URL; headers: Record<string, string>; body: string } {
    const body = input.body ?? (input.json === undefined ? '' : JSON.stringify(input.json));
    // The authority the signature covers is the one sent, whatever node would write.
    const headers: Record<string, string> = { host: this.#base.host };
    if (body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const requestId = input.requestId ?? this.#requestId?.();
    if (requestId) headers[REQUEST_ID_HEADER] = requestId;
    if (input.sign !== false) {
      const key = input.sign ?? this.#key();
      Object.assign(headers, signRequest({ key, method: input.method, authority: this.#base.host, path: input.path, body }));
    }
    if (input.headers) Object.assign(headers, input.headers);
    return { url: new URL(input.path, this.#base), headers, body };
  }

  async #attempt(input: SignedRequest): Promise<SignedResponse> {
    const { url, headers, body } = this.#signed(input);
    return this.#send(input.method, url, headers, body, input.timeoutMs ?? this.#timeoutMs, input.maxResponseBytes ?? this.#maxResponseBytes, input.idleTimeoutMs ?? this.#idleTimeoutMs);
  }

  /**
   * One exchange. Written with `once` and the body's async iterator, whose
   * listeners go when they are done: a kept-alive socket keeps its last
   * request (and that request its listeners) until the next one, and a
   * listener holding this promise would keep the whole last body (a list of
   * 10,000 containers is 5 MB) alive with it.
   */
  async #send(method: string, url: URL, headers: Record<string, string>, body: string, timeoutMs: number, limit: number, idleTimeoutMs: number): Promise<SignedResponse> {
    const req = request(url, { method, headers, agent: this.#agent });
    // Errors reach us through `once` and the body's iterator; this only keeps a late one from being unhandled.
    req.on('error', ignore);
    let timedOut: SignedClientError | undefined;
    const giveUp = (code: 'ERR_TIMEOUT' | 'ERR_IDLE_TIMEOUT', ms: number, what: string) => {
      timedOut = new SignedClientError('network', code, `no answer within ${ms} ms${what}`);
      req.destroy(timedOut);
    };
    const timer = timeoutMs > 0 ? setTimeout(giveUp, timeoutMs, 'ERR_TIMEOUT', timeoutMs, '') : undefined;
    if (idleTimeoutMs > 0) req.setTimeout(idleTimeoutMs, () => giveUp('ERR_IDLE_TIMEOUT', idleTimeoutMs, ' (idle)'));
    try {
      req.end(body || undefined);
      let res: IncomingMessage;
      try {
        [res] = (await once(req, 'response')) as [IncomingMessage];
      } catch (error) {
        throw timedOut ?? networkError(error, req.reusedSocket);
      }
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > limit) throw tooLarge(req, res.statusCode ?? 0, limit);
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res) {
          size += (chunk as Buffer).length;
          if (size > limit) throw tooLarge(req, res.statusCode ?? 0, limit);
          chunks.push(chunk as Buffer);
        }
      } catch (error) {
        if (error instanceof SignedClientError) throw error;
        throw timedOut ?? networkError(error, false);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      return { status: res.statusCode ?? 0, headers: res.headers, text, json: parseJson(text) };
    } finally {
      clearTimeout(timer);
    }
  }
}

function signedBeforeStart(response: SignedResponse): boolean {
  return response.status === 401 && readErrorBody(response.json)?.code === SIGNED_BEFORE_START;
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function tooLarge(req: { destroy(): void }, status: number, limit: number): SignedClientError {
  // The rest of the answer is not read: the connection cannot be reused.
  req.destroy();
  return new SignedClientError('response', 'RESPONSE_TOO_LARGE', `answer larger than ${limit} bytes (status ${status})`, { status });
}

function networkError(error: unknown, reusedSocket: boolean): SignedClientError {
  const cause = error as NodeJS.ErrnoException;
  const code = typeof cause?.code === 'string' ? cause.code : 'ERR_NETWORK';
  const wrapped = new SignedClientError('network', code, cause?.message ?? String(error), { cause: error });
  if (reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) staleSocket.add(wrapped);
  return wrapped;
}

function ignore(): void {}
