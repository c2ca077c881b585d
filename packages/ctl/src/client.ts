import { Agent, buildConnector, request } from 'undici';
import { signRequest, tlsTrustOptions, verifyingConnector } from '@unionize/protocol';
import { CtlError } from './errors.js';
import type { Connection } from './settings.js';

/** Connection-level failures, in words an operator can act on. */
const TRANSPORT_HINTS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the orchestrator running? systemctl status orchestrator)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'no such host',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'no connection within 10 s',
  UND_ERR_HEADERS_TIMEOUT: 'no answer within 15 s',
  UND_ERR_SOCKET: 'the connection was closed',
  ECONNRESET: 'the connection was reset (a plain-HTTP port, or a TLS problem?)',
  EPROTO: 'TLS handshake failed (is it an HTTPS port?)',
};

/** Signed requests to the orchestrator's API (undici; the server verified by CA, pin or both). */
export class OrchestratorClient {
  readonly #base: URL;
  readonly #secret: Buffer;
  readonly #dispatcher: Agent;

  constructor(readonly connection: Connection) {
    this.#base = new URL(connection.url);
    this.#secret = connection.secret;
    const connector = buildConnector({
      ...tlsTrustOptions(connection.trust),
      timeout: 10_000,
      // A resumed session would show no certificate to compare with the pin.
      ...(connection.trust.pin ? { maxCachedSessions: 0 } : {}),
    });
    this.#dispatcher = new Agent({ connect: verifyingConnector(connector, connection.trust) });
  }

  /** The JSON answer; a CtlError with one clear line for anything else. */
  async call<T = unknown>(method: 'GET' | 'DELETE', path: string): Promise<T> {
    const headers = signRequest({ secret: this.#secret, method, path, body: '' });
    let status: number;
    let text: string;
    try {
      const response = await request(new URL(path, this.#base), {
        method,
        headers,
        dispatcher: this.#dispatcher,
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      throw new CtlError(`cannot reach the orchestrator at ${this.#base.origin}: ${describeTransport(error)}`);
    }
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON: described below */
    }
    if (status >= 200 && status < 300) return json as T;
    const detail = (json as { error?: { code?: string; message?: string } } | null)?.error;
    const what = detail ? `${status} ${detail.code}: ${detail.message}` : `${status} ${text.slice(0, 120)}`;
    if (status === 401) {
      throw new CtlError(
        `the orchestrator refused the request (${what}): is the secret file the orchestrator's, and are both clocks within 60 s?`,
      );
    }
    throw new CtlError(`${method} ${path}: ${what}`);
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }
}

function describeTransport(error: unknown): string {
  // undici wraps the socket's error: look through the causes for a code.
  for (let e = error as { code?: string; message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'ERR_TLS_PIN_MISMATCH' || e.code === 'ERR_TLS_NOT_TRUSTED') return e.message ?? e.code;
    if (e.code && TRANSPORT_HINTS[e.code]) return TRANSPORT_HINTS[e.code]!;
    if (e.code?.startsWith('ERR_TLS') || e.code?.startsWith('ERR_SSL') || /certificate|altnames/i.test(e.message ?? '')) {
      return `TLS: ${e.message}`;
    }
    if (!e.cause) return e.message ?? String(error);
  }
  return String(error);
}
