import { constants, mkdirSync, writeFileSync, openSync, closeSync, fstatSync, fsyncSync, readSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { LeaseEvent } from '@unionize/protocol/lease-event';
import { tryLock, type LockAttempt } from './pid-lock.js';
import { eventOfSpooledCall, type DhcpServer } from './spooled-call.js';

/**
 * The hook's spool, as its one reader (the flusher) sees it: a FIFO of
 * dnsmasq calls that dnsmasq/orchestrator-hook.sh, its one writer, spools.
 *
 * One call per file, `<ms>-<pid>-<eventId>.call` (spooled-call.ts), where
 * <ms> is zero-padded so that names sort in arrival order, and never less
 * than the newest name's + 1, so a clock stepped backwards cannot put a new
 * call in front of older ones. A file appears only complete: the writer
 * writes a dot-named temp file in the same directory and renames it.
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

/** A dnsmasq call is its arguments and a dozen DNSMASQ_* variables: well under 64 KiB. */
export const DEFAULT_MAX_CALL_BYTES = 64 * 1024;

export type SpoolRead =
  | { ok: true; event: LeaseEvent; warnings?: string[] }
  | { ok: false; reason: string }
  /** A dnsmasq call the hook does not use (DHCPv4, an unused action): nothing to deliver. */
  | { ok: 'ignored'; reason: string };

/** The name the writer gives a call (older writers put a counter after the pid). */
const ENTRY = /^[0-9]{15}-[0-9]+-(?:[0-9]+-)?[0-9a-fA-F-]{36}\.call$/;
const TEMP_PREFIX = '.tmp-';
/** pid-lock.ts's temp file while it writes the lock. */
const FLUSHER_TEMP = /^\.flusher\.[0-9]+\.[0-9]+\.tmp$/;
/** Read by dnsmasq/orchestrator-hook.sh: keep the name and the content (pid-lock.ts: `<pid> <start time>`) in step with it. */
export const FLUSHER_LOCK_FILE = '.flusher';
export const REJECTED_DIR = 'rejected';
/** Beside each file in rejected/: when and why it was set aside. */
export const REASON_SUFFIX = '.reason';

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
    return names.filter((n) => ENTRY.test(n)).sort();
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
      .filter((n) => !ENTRY.test(n) && n !== REJECTED_DIR && !n.startsWith(TEMP_PREFIX) && n !== FLUSHER_LOCK_FILE && !FLUSHER_TEMP.test(n))
      .sort();
  }

  /**
   * A spooled call as an event. Only a regular file (not followed if a
   * symbolic link, not opened blocking if a FIFO) of at most maxCallBytes is
   * read; anything else is not a call ({ ok: false }: the flusher moves it aside).
   */
  read(name: string): SpoolRead {
    let bytes: Buffer;
    let fd: number | undefined;
    try {
      fd = openSync(join(this.dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const stat = fstatSync(fd);
      if (!stat.isFile()) return { ok: false, reason: 'not a regular file' };
      if (stat.size > this.#maxCallBytes) return { ok: false, reason: `${stat.size} bytes, over max_call_bytes ${this.#maxCallBytes}` };
      bytes = Buffer.alloc(stat.size);
      let read = 0;
      while (read < bytes.length) {
        const n = readSync(fd, bytes, read, bytes.length - read, read);
        if (n === 0) break;
        read += n;
      }
      bytes = bytes.subarray(0, read);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { ok: false, reason: code === 'ELOOP' ? 'a symbolic link' : `cannot read: ${(error as Error).message}` };
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    const call = eventOfSpooledCall(bytes, this.#dhcp);
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
      writeFileSync(`${target}${REASON_SUFFIX}`, `${new Date(this.#now()).toISOString()} ${reason}\n`, { mode: 0o600 });
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
      if (!name.startsWith(TEMP_PREFIX) && !FLUSHER_TEMP.test(name)) continue;
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
