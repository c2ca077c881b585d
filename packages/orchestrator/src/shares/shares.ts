import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, type ReadStream } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { ApiError, type ShareCreated } from '@unionize/protocol';
import type { AgentClient } from '../agents/agent-client.js';
import { exportSourceOf, openExport } from '../exports/export-source.js';
import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';
import type { ShareRecord } from '../store/types.js';

/** A link's token: 32 random bytes, base64url (43 characters). */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const SPOOL_FILE = /^[0-9a-f]{64}\.tar\.gz$/;

export interface SharesOptions {
  store: Store;
  agents: readonly AgentClient[];
  clock: Clock;
  log: Logger;
  /** [share] dir: where exports wait for their download (mode 700). */
  dir: string;
  /** [share] url: the public base of the links (https://host:port); default: the origin the operator called. */
  baseUrl?: string;
  /** [share] max_days: the longest a link may live. */
  maxSeconds: number;
  /** [share] max_mb: the spool's total; a share that would pass it is refused. */
  maxBytes: number;
}

/** What a download gets: the spooled file, its size and name. */
export interface Download {
  stream: ReadStream;
  sizeBytes: number;
  filename: string;
  /** Removes the file: call when the download ended (the link is used either way). */
  done: () => void;
}

/**
 * One-time download links of a client's export (issue 20, hand-over):
 * `create` spools the export (the client's live container or newest kept
 * image, as `orchestratorctl export` gets it) into the share directory and
 * records the link by the SHA-256 of its token; `download` serves it once,
 * with its length, until it expires; `expire` removes what is past its time.
 * The file outlives the container or image it came from, so a visitor can
 * download what they made after their lease ended and its image went.
 */
export class Shares {
  readonly #o: SharesOptions;
  /** Exports being spooled, by token hash: their files are not strays until their link is recorded. */
  readonly #spooling = new Set<string>();

  constructor(options: SharesOptions) {
    this.#o = options;
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  }

  async create(clientId: string, seconds: number, origin: string): Promise<ShareCreated> {
    if (seconds > this.#o.maxSeconds) {
      throw new ApiError(400, 'SHARE_TOO_LONG', `a link may live at most ${Math.floor(this.#o.maxSeconds / 86_400)} days ([share] max_days), not ${seconds} s`);
    }
    const source = await exportSourceOf(this.#o.store, clientId);
    if (!source) throw new ApiError(404, 'NOT_FOUND', `client ${clientId.slice(0, 40)} has no container and no kept image`);
    const token = randomBytes(32).toString('base64url');
    const tokenHash = hashOf(token);
    this.#spooling.add(tokenHash);
    try {
      const sizeBytes = await this.#spool(tokenHash, await openExport(this.#o.agents, source));
      const now = this.#o.clock.now();
      const share: ShareRecord = {
        tokenHash,
        clientId,
        filename: source.filename,
        sizeBytes,
        createdAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + seconds * 1000).toISOString(),
        usedAt: null,
      };
      await this.#o.store.putShare(share);
      this.#o.log.info({ client: clientId, sizeBytes, expiresAt: share.expiresAt }, 'share link made');
      return { url: `${this.#o.baseUrl ?? origin}/shared/${token}`, clientId, filename: share.filename, sizeBytes, expiresAt: share.expiresAt };
    } finally {
      this.#spooling.delete(tokenHash);
    }
  }

  /** The export behind a link, once: 404 for a link never made, 410 for one used or expired. */
  async download(token: string): Promise<Download> {
    const share = TOKEN.test(token) ? await this.#o.store.getShare(hashOf(token)) : undefined;
    if (!share) throw new ApiError(404, 'NOT_FOUND', 'no such link');
    const now = this.#o.clock.now();
    if (Date.parse(share.expiresAt) <= now.getTime()) throw new ApiError(410, 'SHARE_EXPIRED', `this link expired at ${share.expiresAt}`);
    if (!await this.#o.store.useShare(share.tokenHash, now.toISOString())) throw new ApiError(410, 'SHARE_USED', 'this link was used already: it serves once');
    const file = this.#file(share.tokenHash);
    let stream: ReadStream;
    let sizeBytes: number;
    try {
      const fd = openSync(file, 'r');
      sizeBytes = fstatSync(fd).size;
      stream = createReadStream('', { fd });
    } catch (error) {
      throw new ApiError(410, 'SHARE_GONE', `this link's file is gone (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    this.#o.log.info({ client: share.clientId, sizeBytes }, 'share link used');
    return { stream, sizeBytes, filename: share.filename, done: () => this.#remove(share.tokenHash) };
  }

  /**
   * Links past their time go, with their files. A used link stays (it
   * answers 410 SHARE_USED until it expires), its file gone with its
   * download; a file no unused link names goes too, and a partial one no
   * spool is writing. Returns how many links went.
   */
  async expire(): Promise<number> {
    const now = this.#o.clock.now().getTime();
    let removed = 0;
    const unused = new Set<string>();
    for (const share of await this.#o.store.listShares()) {
      if (Date.parse(share.expiresAt) <= now) {
        await this.#o.store.deleteShare(share.tokenHash);
        this.#remove(share.tokenHash);
        removed++;
      } else if (share.usedAt === null) {
        unused.add(share.tokenHash);
      }
    }
    for (const name of readdirSync(this.#o.dir)) {
      const hash = name.slice(0, 64);
      if (this.#spooling.has(hash)) continue;
      // A download in progress keeps its open file; removing its name frees the space at its end.
      if ((SPOOL_FILE.test(name) && !unused.has(hash)) || name.endsWith('.part')) rmSync(join(this.#o.dir, name), { force: true });
    }
    if (removed > 0) this.#o.log.info({ removed }, 'share links past their time: removed');
    return removed;
  }

  /** The spool's size now, in bytes. */
  usedBytes(): number {
    let total = 0;
    for (const name of readdirSync(this.#o.dir)) {
      if (SPOOL_FILE.test(name) || name.endsWith('.part')) total += statSync(join(this.#o.dir, name)).size;
    }
    return total;
  }

  /** Write the export into the spool (a `.part` file, fsynced, then renamed); refused past max_mb. */
  async #spool(tokenHash: string, source: Readable): Promise<number> {
    const room = this.#o.maxBytes - this.usedBytes();
    const part = join(this.#o.dir, `${tokenHash}.part`);
    let written = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        written += chunk.length;
        if (written > room) callback(new ApiError(507, 'SHARE_SPOOL_FULL', `the share directory would pass [share] max_mb (${Math.floor(room / 1024 / 1024)} MiB left)`));
        else callback(null, chunk);
      },
    });
    try {
      await pipeline(source, count, createWriteStream(part, { mode: 0o600, flags: 'wx' }));
      const fd = openSync(part, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(part, this.#file(tokenHash));
    } catch (error) {
      rmSync(part, { force: true });
      if (error instanceof ApiError) throw error;
      throw new ApiError(502, 'EXPORT_FAILED', `the export stopped before its end: ${(error as Error).message}`);
    }
    return written;
  }

  #file(tokenHash: string): string {
    return join(this.#o.dir, `${tokenHash}.tar.gz`);
  }

  #remove(tokenHash: string): void {
    rmSync(this.#file(tokenHash), { force: true });
  }
}

function hashOf(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
