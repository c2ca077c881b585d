import { createHmac, hash, randomUUID, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 request signing shared by the hook, the orchestrator and unionize.
 *
 * The signature covers the timestamp, a nonce, the method, the path with its
 * query, and the SHA-256 of the body, so a captured request cannot be replayed
 * (time window + nonce cache, and no request signed before the server
 * started: `notBefore`), moved to another route, or given another body.
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
  // One-shot hash(): createHash() looks the digest up in OpenSSL 3 for each
  // object, which cost more than hashing a lease event.
  return hash('sha256', body, 'hex');
}

function canonical(timestamp: string, nonce: string, method: string, path: string, bodySha256: string): string {
  return `${timestamp}\n${nonce}\n${method.toUpperCase()}\n${path}\n${bodySha256}`;
}

/** Headers to add to a request. */
export function signRequest(input: SignInput): Record<string, string> {
  const timestamp = String(Math.floor((input.now ?? Date.now()) / 1000));
  // 122 random bits as 32 hex digits. randomUUID draws from a batch of random
  // bytes it refills now and then; randomBytes(16) asks OpenSSL each time,
  // which cost a load generator more than the HMAC did.
  const nonce = input.nonce ?? randomUUID().replaceAll('-', '');
  const mac = createHmac('sha256', input.secret)
    .update(canonical(timestamp, nonce, input.method, input.path, bodyHash(input.body)))
    .digest('hex');
  return {
    [SIGNATURE_HEADERS.timestamp]: timestamp,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: mac,
  };
}

/**
 * The error code of a request signed before the server started (401): a
 * replay of a request an earlier run of the server took (its nonce is no
 * longer remembered), or a client whose clock is behind and that signed it in
 * the server's first seconds. A client signs it anew and sends it again.
 */
export const SIGNED_BEFORE_START = 'SIGNED_BEFORE_START';

/** `busy`: refused for load, not for the request: the caller may retry (503). `code`: a refusal with its own error code. */
export type VerifyResult = { ok: true } | { ok: false; reason: string; busy?: true; code?: typeof SIGNED_BEFORE_START };

export interface VerifierOptions {
  secret: Buffer;
  /** Accepted clock skew either way, seconds. */
  windowSeconds?: number;
  /**
   * Most nonces remembered at once; beyond it requests are refused (503,
   * busy) rather than memory grown. Each is kept until its timestamp leaves
   * the window, so this bounds the sustained rate of signed requests to about
   * maxNonces / windowSeconds: the default, 250,000, allows 4,000 a second
   * with the default window, in about 20 MB when full.
   */
  maxNonces?: number;
  /**
   * Unix milliseconds, the server's start: a request whose timestamp is not
   * after its second is refused (SIGNED_BEFORE_START). Nonces are remembered
   * in memory only; this is what refuses, after a restart, the replay of a
   * request the previous run took. Default: none (tests).
   */
  notBefore?: number;
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
  readonly #notBeforeSecond: number;
  readonly #now: () => number;
  /** Nonces seen within the window. */
  readonly #nonces = new Set<string>();
  /**
   * The same nonces in arrival order, with the unix second after which each
   * may be forgotten, read from #head on. Forgetting walks this queue, not the
   * set: iterating a Map or Set from its start walks over the entries deleted
   * since it last rehashed, which under a steady load made each verify slower
   * than the last (200 µs at 3,000 requests a second after two minutes).
   */
  #order: string[] = [];
  #until: number[] = [];
  #head = 0;

  constructor(options: VerifierOptions) {
    if (options.secret.length < 16) throw new Error('HMAC secret must be at least 16 bytes');
    this.#secret = options.secret;
    this.#windowSeconds = options.windowSeconds ?? 60;
    this.#maxNonces = options.maxNonces ?? 250_000;
    this.#notBeforeSecond = options.notBefore === undefined ? -Infinity : Math.floor(options.notBefore / 1000);
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
    // Timestamps have whole seconds: one signed in the start's second may be from before it.
    if (Number(timestamp) <= this.#notBeforeSecond) {
      return { ok: false, reason: 'signed before this server started (a replay, or a clock behind: sign it again)', code: SIGNED_BEFORE_START };
    }

    this.#forgetExpired(nowSeconds);
    if (this.#nonces.has(nonce)) return { ok: false, reason: 'nonce already used (replay)' };
    if (this.#nonces.size >= this.#maxNonces) return { ok: false, reason: 'nonce cache full, try again', busy: true };
    this.#nonces.add(nonce);
    this.#order.push(nonce);
    this.#until.push(Number(timestamp) + this.#windowSeconds);
    return { ok: true };
  }

  #forgetExpired(nowSeconds: number): void {
    // Nonces arrive roughly in time order: stop at the first one still valid.
    let head = this.#head;
    while (head < this.#order.length && this.#until[head]! < nowSeconds) this.#nonces.delete(this.#order[head++]!);
    if (head === this.#head) return;
    this.#head = head;
    // Drop the forgotten part of the queue once it is most of it (amortised O(1)).
    if (head >= 1024 && head * 2 >= this.#order.length) {
      this.#order = this.#order.slice(head);
      this.#until = this.#until.slice(head);
      this.#head = 0;
    }
  }
}
