import { Agent, request, type IncomingMessage } from 'node:http';

/**
 * The Docker Engine API over its unix socket, with nothing but node:http: the
 * daemon and `unionize attach` ask Docker a few questions (docker-client.ts).
 * dockerode, for those, loads 229 modules (docker-modem, ssh2 with its native
 * crypto, gRPC, protobufjs, tar-fs): ~15 MB of an idle agent's RSS (issue 5);
 * it is left to the test lab (README, Dependencies).
 *
 * Paths carry no API version, as dockerode's: Docker answers with its own.
 * https://docs.docker.com/reference/api/engine/
 */

/** Docker answered, with a status that is not 2xx (304 included: the caller decides what it means). */
export class EngineHttpError extends Error {
  constructor(
    readonly statusCode: number,
    /** Docker's `{ "message": ... }`, or the body's text, or the status line. */
    readonly dockerMessage: string,
  ) {
    super(`(HTTP code ${statusCode}) ${dockerMessage}`);
    this.name = 'EngineHttpError';
  }
}

export interface EngineRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path with query, e.g. `/containers/json?all=true`. */
  path: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Gives up (and destroys the socket) after this long; else the client's default. */
  timeoutMs?: number;
}

export interface EngineHttpOptions {
  socketPath: string;
  /** Per-request budget, ms (default 60 s: a create may pull nothing but still take a while under load). */
  timeoutMs?: number;
}

/** One connection pool to one Docker socket; idle connections are closed after a few seconds. */
export class EngineHttp {
  readonly #socketPath: string;
  readonly #timeoutMs: number;
  readonly #agent = new Agent({ keepAlive: true, keepAliveMsecs: 1_000, maxFreeSockets: 4, timeout: 5_000 });

  constructor(options: EngineHttpOptions) {
    this.#socketPath = options.socketPath;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** The parsed JSON answer (or the text, or undefined when empty) of a 2xx; EngineHttpError for any other status. */
  call<T = unknown>(req: EngineRequest): Promise<T> {
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const timeoutMs = req.timeoutMs ?? this.#timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const out = request(
        {
          socketPath: this.#socketPath,
          agent: this.#agent,
          method: req.method,
          path: req.path,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            const json = /\bjson\b/.test(res.headers['content-type'] ?? '') ? parseJson(text) : undefined;
            if (status >= 200 && status < 300) {
              resolve((json ?? (text === '' ? undefined : text)) as T);
              return;
            }
            const message = (json as { message?: unknown } | undefined)?.message;
            reject(new EngineHttpError(status, typeof message === 'string' ? message : text.trim() || (res.statusMessage ?? `HTTP ${status}`)));
          });
        },
      );
      out.setTimeout(timeoutMs, () => out.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      out.on('error', reject);
      out.end(payload);
    });
  }

  /**
   * A 2xx answer's body, unread, for one too large to hold (`GET
   * /images/get`): the caller reads it to its end or destroys it.
   * `timeoutMs` bounds the wait for the answer's headers and then each wait
   * for more bytes. EngineHttpError for any other status.
   */
  stream(req: Omit<EngineRequest, 'body'>): Promise<IncomingMessage> {
    const timeoutMs = req.timeoutMs ?? this.#timeoutMs;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const out = request({ socketPath: this.#socketPath, agent: this.#agent, method: req.method, path: req.path }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const message = (parseJson(text) as { message?: unknown } | undefined)?.message;
          reject(new EngineHttpError(status, typeof message === 'string' ? message : text.trim() || `HTTP ${status}`));
        });
      });
      out.setTimeout(timeoutMs, () => out.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      out.on('error', reject);
      out.end();
    });
  }

  /** Closes the pooled connections (tests, and a CLI that wants to exit without waiting for them). */
  close(): void {
    this.#agent.destroy();
  }
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}
