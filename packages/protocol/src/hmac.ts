import { createHmac, hash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { PeerKey, SigningKey } from './keys.js';

/**
 * Request signatures in the shape of RFC 9421 (HTTP Message Signatures) with
 * HMAC-SHA256, shared by the hook, the orchestrator, unionize and
 * `orchestratorctl`. We send, and accept, exactly one shape:
 *
 *     Content-Digest: sha-256=:BASE64(SHA-256(body)):
 *     Signature-Input: unionize=("@method" "@authority" "@path" "@query" "content-digest");created=UNIX;nonce="HEX32";keyid="ID";alg="hmac-sha256"
 *     Signature: unionize=:BASE64(HMAC-SHA256(key, signature base)):
 *
 * The signature base is RFC 9421's (section 2.5): one line per covered
 * component, `"NAME": value`, then `"@signature-params": ` and the
 * Signature-Input's value after `unionize=`, joined by LF with none at the
 * end. So the signature covers the method, the authority (host and port the
 * client addressed), the path, the query (`?` when there is none), the body
 * (its digest, checked against the body), the time it was made, a nonce, and
 * the key's id: a captured request cannot be replayed (time window + nonce
 * cache, and no request signed before the server started: `notBefore`),
 * sent to another route, server or port, or given another body, and a key
 * opens only what its peer may do (the server's authorisation, by peer).
 */
export const SIGNATURE_HEADERS = {
  digest: 'content-digest',
  input: 'signature-input',
  signature: 'signature',
} as const;

export const SIGNATURE_LABEL = 'unionize';
export const SIGNATURE_ALGORITHM = 'hmac-sha256';
const COVERED = '("@method" "@authority" "@path" "@query" "content-digest")';

export interface SignInput {
  key: SigningKey;
  method: string;
  /** Host and port as the client addresses the server: `[fd00::1]:8443` (URL.host). */
  authority: string;
  /** Path with query string, e.g. `/v1/clients?state=ready`. */
  path: string;
  body: string | Uint8Array;
  /** Unix milliseconds; defaults to now. */
  now?: number;
  nonce?: string;
}

/** RFC 9530's Content-Digest of a body: `sha-256=:BASE64:`. */
export function contentDigest(body: string | Uint8Array): string {
  // One-shot hash(): createHash() looks the digest up in OpenSSL 3 for each
  // object, which cost more than hashing a lease event.
  return `sha-256=:${hash('sha256', body, 'base64')}:`;
}

function signatureParams(created: string, nonce: string, keyId: string): string {
  return `${COVERED};created=${created};nonce="${nonce}";keyid="${keyId}";alg="${SIGNATURE_ALGORITHM}"`;
}

function signatureBase(method: string, authority: string, pathWithQuery: string, digest: string, params: string): string {
  const q = pathWithQuery.indexOf('?');
  const path = q < 0 ? pathWithQuery : pathWithQuery.slice(0, q);
  const query = q < 0 ? '?' : pathWithQuery.slice(q);
  return `"@method": ${method.toUpperCase()}\n"@authority": ${authority.toLowerCase()}\n"@path": ${path || '/'}\n"@query": ${query}\n"content-digest": ${digest}\n"@signature-params": ${params}`;
}

function mac(secret: Buffer, base: string): Buffer {
  return createHmac('sha256', secret).update(base).digest();
}

/** Headers to add to a request. */
export function signRequest(input: SignInput): Record<string, string> {
  const created = String(Math.floor((input.now ?? Date.now()) / 1000));
  // 122 random bits as 32 hex digits. randomUUID draws from a batch of random
  // bytes it refills now and then; randomBytes(16) asks OpenSSL each time,
  // which cost a load generator more than the HMAC did.
  const nonce = input.nonce ?? randomUUID().replaceAll('-', '');
  const digest = contentDigest(input.body);
  const params = signatureParams(created, nonce, input.key.id);
  const signature = mac(input.key.secret, signatureBase(input.method, input.authority, input.path, digest, params)).toString('base64');
  return {
    [SIGNATURE_HEADERS.digest]: digest,
    [SIGNATURE_HEADERS.input]: `${SIGNATURE_LABEL}=${params}`,
    [SIGNATURE_HEADERS.signature]: `${SIGNATURE_LABEL}=:${signature}:`,
  };
}

/**
 * The error code of a request signed before the server started (401): a
 * replay of a request an earlier run of the server took (its nonce is no
 * longer remembered), or a client whose clock is behind and that signed it in
 * the server's first seconds. A client signs it anew and sends it again.
 */
export const SIGNED_BEFORE_START = 'SIGNED_BEFORE_START';

/**
 * `ok`: the peer whose key signed it. `busy`: refused for load, not for the
 * request: the caller may retry (503). `code`: a refusal with its own error code.
 */
export type VerifyResult =
  | { ok: true; peer: string; keyId: string }
  | { ok: false; reason: string; busy?: true; code?: typeof SIGNED_BEFORE_START };

/** Where a verifier finds a key by its id, and whose it is (protocol's Keyring). */
export interface KeyLookup {
  find(id: string): PeerKey | undefined;
}

export interface VerifierOptions {
  keys: KeyLookup;
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
  /** The request's Host header. */
  authority: string;
  /** Path with its query. */
  path: string;
  body: string | Uint8Array;
  headers: { get(name: string): string | null | undefined };
}

const INPUT_PATTERN = new RegExp(
  `^${SIGNATURE_LABEL}=\\("@method" "@authority" "@path" "@query" "content-digest"\\);created=([0-9]{1,12});nonce="([0-9a-f]{16,64})";keyid="([a-z0-9][a-z0-9._-]{0,63})";alg="${SIGNATURE_ALGORITHM}"$`,
);
const SIGNATURE_PATTERN = new RegExp(`^${SIGNATURE_LABEL}=:([A-Za-z0-9+/]{43}=):$`);
const AUTHORITY_PATTERN = /^[A-Za-z0-9.:[\]-]{1,300}$/;

/**
 * `s` as a string of its own. A regular expression's capture is a slice that
 * keeps the whole string it was cut from alive: a remembered nonce held its
 * ~150-byte signature-input header for the window (6 MB at 30,000 nonces).
 */
function ownCopy(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

/** Verifies signed requests; remembers nonces for the window to refuse replays. */
export class RequestVerifier {
  readonly #keys: KeyLookup;
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
  /**
   * While any nonce is remembered, a timer (unref'd: it keeps no process
   * alive) forgets the expired ones every window, so a server that goes
   * quiet after a burst does not hold the burst's nonces (20,000 of them,
   * 2 MB) until its next request.
   */
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: VerifierOptions) {
    this.#keys = options.keys;
    this.#windowSeconds = options.windowSeconds ?? 60;
    this.#maxNonces = options.maxNonces ?? 250_000;
    this.#notBeforeSecond = options.notBefore === undefined ? -Infinity : Math.floor(options.notBefore / 1000);
    this.#now = options.now ?? Date.now;
  }

  verify(input: VerifyInput): VerifyResult {
    const digest = input.headers.get(SIGNATURE_HEADERS.digest) ?? '';
    const signatureInput = input.headers.get(SIGNATURE_HEADERS.input) ?? '';
    const signature = input.headers.get(SIGNATURE_HEADERS.signature) ?? '';
    if (!digest || !signatureInput || !signature) return { ok: false, reason: 'request is not signed' };
    const params = INPUT_PATTERN.exec(signatureInput);
    if (!params) return { ok: false, reason: 'bad signature-input (not the one shape accepted: see the README)' };
    const sig = SIGNATURE_PATTERN.exec(signature);
    if (!sig) return { ok: false, reason: 'bad signature format' };
    if (!AUTHORITY_PATTERN.test(input.authority)) return { ok: false, reason: 'bad host header' };
    const [, created, nonce, keyId] = params as unknown as [string, string, string, string];

    const found = this.#keys.find(keyId);
    if (!found) return { ok: false, reason: `unknown key id ${keyId}` };
    const nowSeconds = Math.floor(this.#now() / 1000);
    if (Math.abs(nowSeconds - Number(created)) > this.#windowSeconds) {
      return { ok: false, reason: 'timestamp outside the accepted window' };
    }
    if (digest !== contentDigest(input.body)) return { ok: false, reason: 'content-digest does not match the body' };
    const base = signatureBase(input.method, input.authority, input.path, digest, signatureInput.slice(SIGNATURE_LABEL.length + 1));
    // Canonical base64 only: another spelling of the same bytes is not the signature sent.
    const given = Buffer.from(sig[1]!, 'base64');
    if (given.toString('base64') !== sig[1]) return { ok: false, reason: 'bad signature format' };
    if (!timingSafeEqual(mac(found.key.secret, base), given)) return { ok: false, reason: 'bad signature' };
    // Timestamps have whole seconds: one signed in the start's second may be from before it.
    if (Number(created) <= this.#notBeforeSecond) {
      return { ok: false, reason: 'signed before this server started (a replay, or a clock behind: sign it again)', code: SIGNED_BEFORE_START };
    }

    this.#forgetExpired(nowSeconds);
    if (this.#nonces.has(nonce)) return { ok: false, reason: 'nonce already used (replay)' };
    if (this.#nonces.size >= this.#maxNonces) return { ok: false, reason: 'nonce cache full, try again', busy: true };
    const own = ownCopy(nonce);
    this.#nonces.add(own);
    this.#order.push(own);
    this.#until.push(Number(created) + this.#windowSeconds);
    this.#sweeper ??= setInterval(() => this.#sweep(), this.#windowSeconds * 1000).unref();
    return { ok: true, peer: found.peer, keyId };
  }

  /** Nonces remembered now (within the window, or expired and not yet forgotten). */
  get remembered(): number {
    return this.#nonces.size;
  }

  #sweep(): void {
    this.#forgetExpired(Math.floor(this.#now() / 1000));
    if (this.#nonces.size > 0) return;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#order = [];
    this.#until = [];
    this.#head = 0;
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
