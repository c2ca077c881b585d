import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 request signing shared by the hook, the orchestrator and unionize.
 *
 * The signature covers the timestamp, a nonce, the method, the path with its
 * query, and the SHA-256 of the body, so a captured request cannot be replayed
 * (time window + nonce cache), moved to another route, or given another body.
 */
export const SIGNATURE_HEADERS = {
  timestamp: 'x-unionize-timestamp',
  nonce: 'x-unionize-nonce',
  signature: 'x-unionize-signature',
} as const;

export interface SignInput {
  secret: Buffer;
  method: string;
  /** Path with query string, e.g. `/v1/clients?state=ready`. */
  path: string;
  body: string | Uint8Array;
  /** Unix milliseconds; defaults to now. */
  now?: number;
  nonce?: string;
}

export function bodyHash(body: string | Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

function canonical(timestamp: string, nonce: string, method: string, path: string, hash: string): string {
  return `${timestamp}\n${nonce}\n${method.toUpperCase()}\n${path}\n${hash}`;
}

/** Headers to add to a request. */
export function signRequest(input: SignInput): Record<string, string> {
  const timestamp = String(Math.floor((input.now ?? Date.now()) / 1000));
  const nonce = input.nonce ?? randomBytes(16).toString('hex');
  const mac = createHmac('sha256', input.secret)
    .update(canonical(timestamp, nonce, input.method, input.path, bodyHash(input.body)))
    .digest('hex');
  return {
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: mac,
  };
}

/** `busy`: refused for load, not for the request: the caller may retry (503). */
export type VerifyResult = { ok: true } | { ok: false; reason: string; busy?: true };

export interface VerifierOptions {
  secret: Buffer;
  /** Accepted clock skew either way, seconds. */
  windowSeconds?: number;
  /** Most nonces remembered at once; beyond it requests are refused rather than memory grown. */
  maxNonces?: number;
  now?: () => number;
}

export interface VerifyInput {
  method: string;
  path: string;
  body: string | Uint8Array;
  headers: { get(name: string): string | null | undefined };
}

/** Verifies signed requests; remembers nonces for the window to refuse replays. */
export class RequestVerifier {
  readonly #secret: Buffer;
  readonly #windowSeconds: number;
  readonly #maxNonces: number;
  readonly #now: () => number;
  /** nonce -> unix seconds after which it may be forgotten */
  readonly #nonces = new Map<string, number>();

  constructor(options: VerifierOptions) {
    if (options.secret.length < 16) throw new Error('HMAC secret must be at least 16 bytes');
    this.#secret = options.secret;
    this.#windowSeconds = options.windowSeconds ?? 60;
    this.#maxNonces = options.maxNonces ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  verify(input: VerifyInput): VerifyResult {
    const timestamp = input.headers.get(SIGNATURE_HEADERS.timestamp) ?? '';
    const nonce = input.headers.get(SIGNATURE_HEADERS.nonce) ?? '';
    const signature = input.headers.get(SIGNATURE_HEADERS.signature) ?? '';
    if (!timestamp || !nonce || !signature) return { ok: false, reason: 'request is not signed' };
    if (!/^[0-9]{1,12}$/.test(timestamp)) return { ok: false, reason: 'bad timestamp' };
    if (!/^[0-9a-f]{16,64}$/.test(nonce)) return { ok: false, reason: 'bad nonce' };
    if (!/^[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: 'bad signature format' };

    const nowSeconds = Math.floor(this.#now() / 1000);
    if (Math.abs(nowSeconds - Number(timestamp)) > this.#windowSeconds) {
      return { ok: false, reason: 'timestamp outside the accepted window' };
    }
    const expected = createHmac('sha256', this.#secret)
      .update(canonical(timestamp, nonce, input.method, input.path, bodyHash(input.body)))
      .digest();
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return { ok: false, reason: 'bad signature' };

    this.#forgetExpired(nowSeconds);
    if (this.#nonces.has(nonce)) return { ok: false, reason: 'nonce already used (replay)' };
    if (this.#nonces.size >= this.#maxNonces) return { ok: false, reason: 'nonce cache full, try again', busy: true };
    this.#nonces.set(nonce, Number(timestamp) + this.#windowSeconds);
    return { ok: true };
  }

  #forgetExpired(nowSeconds: number): void {
    // Map keeps insertion order and entries are inserted roughly in time order.
    for (const [nonce, until] of this.#nonces) {
      if (until >= nowSeconds) break;
      this.#nonces.delete(nonce);
    }
  }
}
