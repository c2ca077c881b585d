import { closeSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync, constants } from 'node:fs';

/**
 * A lock file holding its owner's PID and process start time, taken with
 * link(2) (atomic, and the file is complete before anyone can see it).
 *
 * A lock whose owner is gone is stale and is broken, under a second short-lived
 * "breaker" lock so that two processes breaking the same stale lock cannot
 * remove each other's fresh one. The owner counts as gone when /proc/<pid>/stat
 * is missing, shows a zombie ('Z': exited, not yet reaped by its parent) or a
 * dead task ('X'), or shows another start time (the PID was reused).
 */

export interface HeldLock {
  readonly file: string;
  release(): void;
}

export type LockAttempt = { ok: true; lock: HeldLock } | { ok: false; heldBy: number | null };

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot); null where /proc is not readable. */
  startTime: string | null;
}

/** Breaker locks are held for microseconds; one older than this was left by a crash. */
const BREAKER_STALE_MS = 10_000;
/** A lock file we cannot parse (should not happen with link(2)) is broken once this old. */
const UNPARSEABLE_STALE_MS = 10_000;

let tmpCounter = 0;

export function selfIdentity(): ProcessIdentity {
  const stat = readProcStat(process.pid);
  return { pid: process.pid, startTime: stat && stat !== 'no-proc' ? stat.startTime : null };
}

/** Try once to take `file`. Throws only when the directory is unusable (EACCES, EROFS, ENOENT…). */
export function tryLock(file: string, self: ProcessIdentity = selfIdentity()): LockAttempt {
  const content = `${self.pid} ${self.startTime ?? '-'}\n`;
  const tmp = `${file}.${self.pid}.${++tmpCounter}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(tmp, file);
        return { ok: true, lock: heldLock(file, content) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = readHolder(file);
      if (holder === 'gone') continue;
      if (!isStale(file, holder)) return { ok: false, heldBy: holder?.pid ?? null };
      breakStale(file, holder);
    }
    return { ok: false, heldBy: pidOf(readHolder(file)) };
  } finally {
    unlinkQuiet(tmp);
  }
}

function pidOf(holder: ProcessIdentity | null | 'gone'): number | null {
  return holder && holder !== 'gone' ? holder.pid : null;
}

function heldLock(file: string, content: string): HeldLock {
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      // Remove it only if it is still ours (nobody should have broken it, but never delete another's lock).
      try {
        if (readFileSync(file, 'utf8') === content) unlinkSync(file);
      } catch {
        /* already gone */
      }
    },
  };
}

/** The identity in a lock file; null when unparseable, 'gone' when the file vanished meanwhile. */
function readHolder(file: string): ProcessIdentity | null | 'gone' {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  }
  const match = /^([1-9][0-9]{0,9}) ([0-9]+|-)\n?$/.exec(text);
  if (!match) return null;
  return { pid: Number(match[1]), startTime: match[2] === '-' ? null : match[2]! };
}

function isStale(file: string, holder: ProcessIdentity | null): boolean {
  if (holder === null) return ageMs(file) > UNPARSEABLE_STALE_MS;
  return !isAlive(holder);
}

/** Whether the process that wrote `who` still runs (and is not a zombie). */
export function isAlive(who: ProcessIdentity): boolean {
  const stat = readProcStat(who.pid);
  if (stat === 'no-proc') {
    try {
      process.kill(who.pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  if (stat === null) return false;
  if (stat.state === 'Z' || stat.state === 'X' || stat.state === 'x') return false;
  return who.startTime === null || stat.startTime === who.startTime;
}

/** State and start time from /proc/<pid>/stat (proc(5)); null if no such process, 'no-proc' without procfs. */
function readProcStat(pid: number): { state: string; startTime: string } | null | 'no-proc' {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return 'no-proc';
    try {
      statSync('/proc/self/stat');
      return null;
    } catch {
      return 'no-proc';
    }
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so cut at the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', startTime: fields[19] ?? '' };
}

function breakStale(file: string, seen: ProcessIdentity | null): void {
  const breaker = `${file}.break`;
  let fd: number;
  try {
    fd = openSync(breaker, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    if (ageMs(breaker) > BREAKER_STALE_MS) unlinkQuiet(breaker);
    return;
  }
  closeSync(fd);
  try {
    // Look again under the breaker: someone may have broken it and taken it meanwhile.
    const now = readHolder(file);
    if (now === 'gone') return;
    const same = now === null ? seen === null : seen !== null && now.pid === seen.pid && now.startTime === seen.startTime;
    if (same && isStale(file, now)) unlinkQuiet(file);
  } finally {
    unlinkQuiet(breaker);
  }
}

function ageMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function unlinkQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    /* gone already */
  }
}
