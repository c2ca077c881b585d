import { mkdirSync, writeFileSync, openSync, closeSync, fsyncSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_MAX_CALL_BYTES, FLUSHER_LOCK_FILE, REASON_SUFFIX, REJECTED_DIR, SPOOL_ENTRY, SPOOL_TEMP_PREFIX, readSpoolFile, reasonLine,
} from '@unionize/protocol/hook-spool';
import type { LeaseEvent } from '@unionize/protocol/lease-event';
import { tryLock, type LockAttempt } from './pid-lock.js';
import { eventOfSpooledCall, type DhcpServer } from './spooled-call.js';

/**
 * The hook's spool, as its one reader (the flusher) sees it: a FIFO of
 * dnsmasq calls that dnsmasq/orchestrator-hook.sh, its one writer, spools.
 * Its layout (names, rejected/, reasons) is protocol's hook-spool.ts, shared
 * with `orchestratorctl hook rejected|resend`.
 *
 * Calls are turned into events (and signed) when read: the HMAC window is
 * 60 s, a spooled call may wait for hours.
 */

export type SpoolErrorCode = 'HOOK_SPOOL_UNWRITABLE' | 'HOOK_SPOOL_UNREADABLE';

export class SpoolError extends Error {
  override readonly name = 'SpoolError';
  constructor(
    readonly code: SpoolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface SpoolOptions {
  dir: string;
  /** The flusher's [dhcp]: which dnsmasq these calls come from. */
  dhcp: DhcpServer;
  /** The largest spooled call read, bytes ([spool] max_call_bytes); a larger file is moved aside. */
  maxCallBytes?: number;
  /** Wall clock, ms; injectable for tests. */
  now?: () => number;
}

export type SpoolRead =
  | { ok: true; event: LeaseEvent; warnings?: string[] }
  | { ok: false; reason: string }
  /** A dnsmasq call the hook does not use (DHCPv4, an unused action): nothing to deliver. */
  | { ok: 'ignored'; reason: string };

/** pid-lock.ts's temp file while it writes the lock. */
const FLUSHER_TEMP = /^\.flusher\.[0-9]+\.[0-9]+\.tmp$/;

export class Spool {
  readonly dir: string;
  readonly rejectedDir: string;
  readonly #dhcp: DhcpServer;
  readonly #maxCallBytes: number;
  readonly #now: () => number;

  constructor(options: SpoolOptions) {
    this.dir = options.dir;
    this.rejectedDir = join(options.dir, REJECTED_DIR);
    this.#dhcp = options.dhcp;
    this.#maxCallBytes = options.maxCallBytes ?? DEFAULT_MAX_CALL_BYTES;
    this.#now = options.now ?? Date.now;
  }

  /** Spooled call file names, oldest first; empty when the directory does not exist. */
  list(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return []; // no spool directory, so nothing spooled
      throw new SpoolError('HOOK_SPOOL_UNREADABLE', `spool ${this.dir}: cannot list: ${(error as Error).message}`, { cause: error });
    }
    return names.filter((n) => SPOOL_ENTRY.test(n)).sort();
  }

  depth(): number {
    return this.list().length;
  }

  /**
   * Entries that are neither spooled calls, nor the writer's temp files, nor
   * the flusher's lock, nor rejected/: put there by someone else (or an old
   * hook's `.json` spool files). The flusher moves them aside.
   */
  strays(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .filter((n) => !SPOOL_ENTRY.test(n) && n !== REJECTED_DIR && !n.startsWith(SPOOL_TEMP_PREFIX) && n !== FLUSHER_LOCK_FILE && !FLUSHER_TEMP.test(n))
      .sort();
  }

  /**
   * A spooled call as an event. Only a regular file (not followed if a
   * symbolic link, not opened blocking if a FIFO) of at most maxCallBytes is
   * read; anything else is not a call ({ ok: false }: the flusher moves it aside).
   */
  read(name: string): SpoolRead {
    const file = readSpoolFile(join(this.dir, name), this.#maxCallBytes);
    if (!file.ok) return file;
    const call = eventOfSpooledCall(file.bytes, this.#dhcp);
    if (call.kind === 'event') return { ok: true, event: call.event, warnings: call.warnings };
    return call.kind === 'ignored' ? { ok: 'ignored', reason: call.reason } : { ok: false, reason: call.reason };
  }

  /**
   * Drop a delivered call. Not fsynced: the flusher removes one file per
   * event it delivers, and under Docker's writes a directory fsync can take
   * 100 ms. A removal a crash undoes only delivers that event again, which the
   * orchestrator answers as a duplicate (events are idempotent by eventId).
   */
  remove(name: string): void {
    try {
      unlinkSync(join(this.dir, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new SpoolError('HOOK_SPOOL_UNWRITABLE', `spool ${this.dir}: cannot remove delivered ${name}: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Move a refused (or unreadable) spooled call to rejected/, for an operator
   * to look at, with its reason beside it (`NAME.reason`); returns its new path.
   */
  reject(name: string, reason: string): string {
    this.#ensureDir(this.rejectedDir);
    const target = join(this.rejectedDir, name);
    try {
      renameSync(join(this.dir, name), target);
    } catch (error) {
      throw new SpoolError('HOOK_SPOOL_UNWRITABLE', `spool ${this.dir}: cannot move ${name} to ${REJECTED_DIR}/: ${(error as Error).message}`, { cause: error });
    }
    try {
      writeFileSync(`${target}${REASON_SUFFIX}`, reasonLine(new Date(this.#now()), reason), { mode: 0o600 });
    } catch {
      /* the reason is in the flusher's log too */
    }
    this.#syncDir(this.rejectedDir);
    this.#syncDir(this.dir);
    return target;
  }

  /** How many spooled files are set aside in rejected/ (reasons not counted); 0 when there is none. */
  rejectedCount(): number {
    try {
      return readdirSync(this.rejectedDir).filter((n) => !n.endsWith(REASON_SUFFIX)).length;
    } catch {
      return 0;
    }
  }

  /**
   * Take the flusher's lifetime lock once, without waiting: the spool has one
   * reader, and dnsmasq/orchestrator-hook.sh warns while no live process
   * holds it. Throws SpoolError when the directory is unusable.
   */
  tryFlusherLock(): LockAttempt {
    this.#ensureDir(this.dir);
    try {
      return tryLock(join(this.dir, FLUSHER_LOCK_FILE));
    } catch (error) {
      throw new SpoolError('HOOK_SPOOL_UNWRITABLE', `spool ${this.dir}: cannot take the flusher lock: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Remove temp files left by a writer that crashed between write and rename
   * (its call was never acknowledged to dnsmasq as spooled).
   */
  removeStaleTemp(olderThanMs = 60_000): string[] {
    const removed: string[] = [];
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return removed;
    }
    for (const name of names) {
      if (!name.startsWith(SPOOL_TEMP_PREFIX) && !FLUSHER_TEMP.test(name)) continue;
      try {
        if (this.#now() - statSync(join(this.dir, name)).mtimeMs < olderThanMs) continue;
        unlinkSync(join(this.dir, name));
        removed.push(name);
      } catch {
        /* raced with its writer */
      }
    }
    return removed;
  }

  #ensureDir(dir: string): void {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new SpoolError('HOOK_SPOOL_UNWRITABLE', `spool ${dir}: cannot create: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * fsync a directory so a rename in it survives a power cut (fsync(2)).
   * Best effort: the rename itself has happened, and some file systems refuse it.
   */
  #syncDir(dir: string): void {
    let fd: number | undefined;
    try {
      fd = openSync(dir, 'r');
      fsyncSync(fd);
    } catch {
      /* durability only; the entry is already visible */
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
