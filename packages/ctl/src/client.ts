import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import { SIGNED_BEFORE_START, SignedClient, SignedClientError } from '@unionize/protocol';
import { CtlError } from './errors.js';
import type { Connection } from './settings.js';

/** Failures before a request reached the server (see OrchestratorClient's failover). */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ERR_CONNECT_TIMEOUT']);

/** Connection-level failures, in words an operator can act on. */
const TRANSPORT_HINTS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the orchestrator running? systemctl status orchestrator)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'no such host',
  ETIMEDOUT: 'timed out',
  ERR_CONNECT_TIMEOUT: 'no connection within 10 s',
  ERR_IDLE_TIMEOUT: 'no answer within 15 s',
  ECONNRESET: 'the connection was reset (a plain-HTTP port, or a TLS problem?)',
  EPROTO: 'TLS handshake failed (is it an HTTPS port?)',
};

/**
 * Signed requests to the orchestrator's API (protocol's SignedClient; the
 * server verified by CA, pin or both). With a pair's URLs, a request goes to
 * the one that answered the last, and on to the next when that one cannot be
 * reached or stands by (503): each is tried once per request.
 */
export class OrchestratorClient {
  readonly #clients: SignedClient[];
  #preferred = 0;

  constructor(readonly connection: Connection) {
    this.#clients = connection.urls.map((url) => new SignedClient({
      url,
      trust: connection.trust,
      key: connection.key,
      connections: 1,
      connectTimeoutMs: 10_000,
      // No byte for 15 s; the whole answer (a list of every client) within 2 minutes.
      idleTimeoutMs: 15_000,
      timeoutMs: 120_000,
      maxResponseBytes: 256 * 1024 * 1024,
    }));
  }

  /** Where the last request was answered. */
  get origin(): string {
    return this.#clients[this.#preferred]!.origin;
  }

  /**
   * `fn` on each orchestrator in turn, from the one that answered last, until
   * one that is up and leads answers. Another is asked only where the request
   * cannot have been taken: no connection was made (NOT_CONNECTED), or a
   * standby refused it (503). After a timeout or a reset the request may have
   * been taken (a ban, a deprovision): it is not sent to a second one.
   */
  async #failover<T>(fn: (client: SignedClient) => Promise<T>): Promise<T> {
    let failure: unknown;
    let refused: unknown;
    for (let tried = 0; tried < this.#clients.length; tried++) {
      const index = (this.#preferred + tried) % this.#clients.length;
      try {
        const answer = await fn(this.#clients[index]!);
        this.#preferred = index;
        return answer;
      } catch (error) {
        const standby = error instanceof SignedClientError && error.status === 503;
        const unreached = error instanceof SignedClientError && error.kind === 'network' && NOT_CONNECTED.has(error.code);
        if (!standby && !unreached) {
          this.#preferred = index;
          throw error;
        }
        // A standby's 503 says less than why another could not be reached: that is what is reported.
        if (standby) refused ??= error;
        else failure ??= error;
      }
    }
    throw failure ?? refused;
  }

  /**
   * The JSON answer, parsed with its schema from the API's contract
   * (protocol's orchestrator-api.ts); a CtlError with one clear line for
   * anything else, an answer that does not match included.
   */
  async call<S extends z.ZodType>(method: 'GET' | 'DELETE' | 'POST', path: string, schema: S, json?: unknown, wait?: { timeoutMs: number }): Promise<z.output<S>> {
    const answer = await this.#answer(method, path, json, wait);
    const parsed = schema.safeParse(answer);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.length > 0 ? `at ${issue.path.join('.')}: ` : '';
      throw new CtlError(
        `${method} ${path}: the orchestrator's answer is not the one orchestratorctl knows (${where}${issue.message}); are both the same version?`,
      );
    }
    return parsed.data;
  }

  /**
   * A download (an export) written to `to` as it comes, never held whole;
   * resolves with its size in bytes. No byte for 10 minutes: given up (an
   * export's first bytes wait for the agent's commit).
   */
  async download(path: string, to: NodeJS.WritableStream): Promise<number> {
    let bytes = 0;
    try {
      const { body } = await this.#failover((client) => client.stream({ method: 'GET', path, timeoutMs: 10 * 60_000, idleTimeoutMs: 10 * 60_000 }));
      const count = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          bytes += chunk.length;
          done(null, chunk);
        },
      });
      await pipeline(body, count, to);
    } catch (error) {
      throw this.#explain(error, 'GET', path);
    }
    return bytes;
  }

  /** `wait`: work answered only at its end (a share's spooling): no idle limit, this long in all. */
  async #answer(method: 'GET' | 'DELETE' | 'POST', path: string, json: unknown, wait?: { timeoutMs: number }): Promise<unknown> {
    try {
      const timeouts = wait ? { timeoutMs: wait.timeoutMs, idleTimeoutMs: 0 } : {};
      return await this.#failover((client) => client.call({ method, path, ...(json === undefined ? {} : { json }), ...timeouts }));
    } catch (error) {
      throw this.#explain(error, method, path);
    }
  }

  /** A CtlError in words an operator can act on (anything but a SignedClientError as it is). */
  #explain(error: unknown, method: string, path: string): unknown {
    if (!(error instanceof SignedClientError)) return error;
    const where = this.#clients.length > 1 ? `any orchestrator of ${this.#clients.map((c) => c.origin).join(', ')}` : `the orchestrator at ${this.origin}`;
    if (error.kind === 'network') throw new CtlError(`cannot reach ${where}: ${describeTransport(error)}`);
    if (error.status === 503 && this.#clients.length > 1) throw new CtlError(`${method} ${path}: none of ${this.#clients.map((c) => c.origin).join(', ')} leads now (each stands by or is deposed); try again in a moment`);
    if (error.kind === 'response') throw new CtlError(`${method} ${path}: ${error.message}`);
    const status = error.status!;
    const text = error.response?.text ?? '';
    const what = error.serverMessage !== undefined ? `${status} ${error.code}: ${error.serverMessage}` : `${status} ${text.slice(0, 120)}`;
    if (status === 401 && error.code === SIGNED_BEFORE_START) {
      throw new CtlError(
        `the orchestrator refused the request (${what}) again after 3 s: it has just restarted, and this machine's clock is behind its; check both clocks (timedatectl)`,
      );
    }
    if (status === 403) {
      throw new CtlError(`the orchestrator refused the request (${what}): sign with an operator key (operator.keys), not the hook's`);
    }
    if (status === 401) {
      throw new CtlError(
        `the orchestrator refused the request (${what}): is the key file one of the orchestrator's operator keys (operator.keys), and are both clocks within 60 s?`,
      );
    }
    throw new CtlError(`${method} ${path}: ${what}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.#clients.map((client) => client.close()));
  }
}

function describeTransport(error: SignedClientError): string {
  if (error.code === 'ERR_TLS_PIN_MISMATCH' || error.code === 'ERR_TLS_NOT_TRUSTED') return error.message;
  if (TRANSPORT_HINTS[error.code]) return TRANSPORT_HINTS[error.code]!;
  if (error.code.startsWith('ERR_TLS') || error.code.startsWith('ERR_SSL') || CERTIFICATE_ERRORS.has(error.code)) return `TLS: ${error.message}`;
  return error.message;
}

/** OpenSSL's verdicts on a server certificate (node's `error.code` when a CA check fails during the handshake). */
const CERTIFICATE_ERRORS = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);
