import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The dashboard's login: one operator token (a mode-600 file, apart from the
 * HMAC secret: whoever may look need not be able to sign), exchanged once for
 * a session cookie. The cookie holds `expiry.nonce.mac`, the MAC an
 * HMAC-SHA256 keyed by a key derived from the token: nothing is stored, a
 * session survives a restart, and replacing the token ends every session.
 */
export const SESSION_COOKIE = 'dashboard_session';

export class DashboardAuth {
  readonly #tokenDigest: Buffer;
  readonly #key: Buffer;
  readonly #ttlSeconds: number;
  readonly #now: () => number;

  constructor(options: { token: Buffer; ttlSeconds?: number; now?: () => number }) {
    this.#tokenDigest = createHash('sha256').update(options.token).digest();
    this.#key = createHmac('sha256', options.token).update('unionize dashboard session v1').digest();
    this.#ttlSeconds = options.ttlSeconds ?? 12 * 3600;
    this.#now = options.now ?? Date.now;
  }

  get ttlSeconds(): number {
    return this.#ttlSeconds;
  }

  /** Constant time, over digests: neither the token's bytes nor its length leak. */
  checkToken(given: string): boolean {
    const digest = createHash('sha256').update(given.trim()).digest();
    return timingSafeEqual(digest, this.#tokenDigest);
  }

  newSession(): string {
    const expiry = Math.floor(this.#now() / 1000) + this.#ttlSeconds;
    const payload = `${expiry}.${randomBytes(16).toString('hex')}`;
    return `${payload}.${this.#mac(payload)}`;
  }

  checkSession(value: string | undefined): boolean {
    const match = /^([0-9]{1,12})\.([0-9a-f]{32})\.([0-9a-f]{64})$/.exec(value ?? '');
    if (!match) return false;
    const payload = `${match[1]}.${match[2]}`;
    if (!timingSafeEqual(Buffer.from(this.#mac(payload), 'hex'), Buffer.from(match[3]!, 'hex'))) return false;
    return Number(match[1]) > Math.floor(this.#now() / 1000);
  }

  #mac(payload: string): string {
    return createHmac('sha256', this.#key).update(payload).digest('hex');
  }
}
