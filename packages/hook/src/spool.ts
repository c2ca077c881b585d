import {
  closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { leaseEventSchema, type LeaseEvent } from '@unionize/protocol/lease-event';
import { tryLock, type LockAttempt } from './pid-lock.js';
import { eventOfSpooledCall } from './spooled-call.js';

/**
 * The hook's durable FIFO of lease events it could not deliver yet.
 *
 * One event per file, `<ms>-<pid>-<counter>-<eventId>.json` (or `.call`: a
 * dnsmasq call spooled by the shell script, turned into an event when read), where <ms> is
 * zero-padded so that names sort in arrival order. <ms> is the wall clock but
 * never less than the newest name's + 1, so a clock stepped backwards cannot put
 * a new event in front of older ones. A file appears only complete: it is
 * written to a dot-named temp file in the same directory, fsynced, renamed,
 * and the directory is fsynced (rename(2) is atomic within a file system).
 *
 * Events are stored unsigned: they are signed when delivered (the HMAC window
 * is 60 s, a spooled event may wait for hours).
 */

export type SpoolErrorCode = 'HOOK_SPOOL_FULL' | 'HOOK_SPOOL_UNWRITABLE' | 'HOOK_SPOOL_UNREADABLE';

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
  maxEvents: number;
  /** Wall clock, ms; injectable for tests. */
  now?: () => number;
}

export type SpoolRead =
  | { ok: true; event: LeaseEvent; warnings?: string[] }
  | { ok: false; reason: string }
  /** A dnsmasq call the hook does not use (DHCPv4, an unused action): nothing to deliver. */
  | { ok: 'ignored'; reason: string };

/** `.json`: an event node's hook spooled; `.call`: a dnsmasq call dnsmasq/orchestrator-hook.sh spooled (spooled-call.ts). */
const ENTRY = /^([0-9]{15})-[0-9]+-[0-9]+-[0-9a-fA-F-]{36}\.(json|call)$/;
const TEMP_PREFIX = '.tmp-';
const LOCK_FILE = '.lock';
/** Read by dnsmasq/orchestrator-hook.sh: keep the name and the content (pid-lock.ts: `<pid> <start time>`) in step with it. */
export const FLUSHER_LOCK_FILE = '.flusher';
export const REJECTED_DIR = 'rejected';

let counter = 0;

export class Spool {
  readonly dir: string;
  readonly rejectedDir: string;
  readonly maxEvents: number;
  readonly #now: () => number;

  constructor(options: SpoolOptions) {
    if (!Number.isInteger(options.maxEvents) || options.maxEvents < 1) throw new Error(`spool maxEvents must be a positive integer, got ${options.maxEvents}`);
    this.dir = options.dir;
    this.rejectedDir = join(options.dir, REJECTED_DIR);
    this.maxEvents = options.maxEvents;
    this.#now = options.now ?? Date.now;
  }

  /** Spooled event file names, oldest first; empty when the directory does not exist. */
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

  /** Durably add an event at the end; returns its file name. Throws SpoolError (full, unwritable). */
  put(event: LeaseEvent): string {
    this.#ensureDir(this.dir);
    const names = this.list();
    if (names.length >= this.maxEvents) {
      throw new SpoolError('HOOK_SPOOL_FULL', `spool ${this.dir} is full (${names.length} events, max_events ${this.maxEvents})`);
    }
    const last = names.length > 0 ? Number(ENTRY.exec(names[names.length - 1]!)![1]) : 0;
    const ms = Math.max(this.#now(), last + 1);
    const name = `${String(ms).padStart(15, '0')}-${process.pid}-${String(++counter).padStart(6, '0')}-${event.eventId}.json`;
    this.#writeAtomic(this.dir, name, `${JSON.stringify(event)}\n`);
    return name;
  }

  read(name: string): SpoolRead {
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(this.dir, name));
    } catch (error) {
      return { ok: false, reason: `cannot read: ${(error as Error).message}` };
    }
    if (name.endsWith('.call')) {
      const call = eventOfSpooledCall(bytes);
      if (call.kind === 'event') return { ok: true, event: call.event, warnings: call.warnings };
      return call.kind === 'ignored' ? { ok: 'ignored', reason: call.reason } : { ok: false, reason: call.reason };
    }
    const text = bytes.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { ok: false, reason: 'not JSON' };
    }
    const parsed = leaseEventSchema.safeParse(json);
    if (!parsed.success) return { ok: false, reason: `not a lease event: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}` };
    return { ok: true, event: parsed.data };
  }

  /**
   * Drop a delivered event. Not fsynced: the flusher removes one file per
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

  /** Move a refused (or unreadable) spooled event to rejected/, for an operator to look at; returns its new path. */
  reject(name: string): string {
    this.#ensureDir(this.rejectedDir);
    const target = join(this.rejectedDir, name);
    try {
      renameSync(join(this.dir, name), target);
    } catch (error) {
      throw new SpoolError('HOOK_SPOOL_UNWRITABLE', `spool ${this.dir}: cannot move ${name} to ${REJECTED_DIR}/: ${(error as Error).message}`, { cause: error });
    }
    this.#syncDir(this.rejectedDir);
    this.#syncDir(this.dir);
    return target;
  }

  /** Write an event that was refused before it was ever spooled straight into rejected/. */
  rejectEvent(event: LeaseEvent): string {
    this.#ensureDir(this.rejectedDir);
    const name = `${String(this.#now()).padStart(15, '0')}-${process.pid}-${String(++counter).padStart(6, '0')}-${event.eventId}.json`;
    this.#writeAtomic(this.rejectedDir, name, `${JSON.stringify(event)}\n`);
    return join(this.rejectedDir, name);
  }

  /** Take the flush lock once, without waiting. Throws SpoolError when the directory is unusable. */
  tryLock(): LockAttempt {
    this.#ensureDir(this.dir);
    try {
      return tryLock(join(this.dir, LOCK_FILE));
    } catch (error) {
      throw new SpoolError('HOOK_SPOOL_UNWRITABLE', `spool ${this.dir}: cannot take the lock: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Take the flusher's lifetime lock once, without waiting: while a live
   * process holds it, dnsmasq/orchestrator-hook.sh only spools. Throws
   * SpoolError when the directory is unusable.
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
   * (their events were never acknowledged as spooled). Call with the lock held.
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
      if (!name.startsWith(TEMP_PREFIX) && !/^\.(lock|flusher)\.[0-9]+\.[0-9]+\.tmp$/.test(name)) continue;
      try {
        if (this.#now() - statSync(join(this.dir, name)).mtimeMs < olderThanMs) continue;
        unlinkSync(join(this.dir, name));
        removed.push(name);
      } catch {
        /* raced with its writer or another cleaner */
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

  #writeAtomic(dir: string, name: string, text: string): void {
    const temp = join(dir, `${TEMP_PREFIX}${name}`);
    try {
      const fd = openSync(temp, 'wx', 0o600);
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, join(dir, name));
    } catch (error) {
      try {
        unlinkSync(temp);
      } catch {
        /* never made */
      }
      throw new SpoolError('HOOK_SPOOL_UNWRITABLE', `spool ${dir}: cannot write ${name}: ${(error as Error).message}`, { cause: error });
    }
    this.#syncDir(dir);
  }

  /**
   * fsync a directory so a rename or unlink in it survives a power cut (fsync(2):
   * "an explicit fsync() on a file descriptor for the directory is also needed").
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
