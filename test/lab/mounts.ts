import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { run } from './process.js';

/** Mount points strictly below `dir` (from /proc/self/mounts). */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point.startsWith(`${dir}/`));
}

export function isMountedUnder(dir: string): boolean {
  return mountsUnder(dir).length > 0;
}

/** Mount points at `dir` or below it (from /proc/self/mounts; one line per mount, so a point can repeat). */
function mountsAtOrUnder(dir: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** Passes over the mount table before detachMountsUnder gives up on what will not go. */
const DETACH_PASSES = 8;

/**
 * Lazily detach whatever is mounted at or below `dir` (a killed dockerd's bind
 * of its data root, network namespaces and overlays; a debootstrap's /proc and
 * /sys), deepest first, pass after pass: a mount hidden under another one at
 * the same or a parent path can only be reached once that one is gone.
 * Returns how many it detached. Synchronous, so a process's exit handler can
 * use it too; `umount --lazy` never waits on the filesystem.
 */
export function detachMountsUnder(dir: string): number {
  let detached = 0;
  for (let pass = 0; pass < DETACH_PASSES; pass++) {
    const points = mountsAtOrUnder(dir).sort((a, b) => b.length - a.length);
    if (points.length === 0) break;
    let progress = false;
    for (const point of new Set(points)) {
      if (spawnSync('umount', ['--lazy', point], { stdio: 'ignore', timeout: 30_000 }).status === 0) {
        detached++;
        progress = true;
      }
    }
    if (!progress) break;
  }
  return detached;
}

/** `rm -rf --one-file-system`: it never follows a mount it missed into the machine's own /proc, /sys or /dev. */
const RM_TREE = (dir: string): string[] => ['rm', '-rf', '--one-file-system', dir];

/**
 * Remove a directory tree that something may have mounted into: detach the
 * mounts first, then remove it without crossing into any mount left.
 */
export async function removeTree(dir: string): Promise<void> {
  detachMountsUnder(dir);
  const result = await run(RM_TREE(dir), { timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`rm -rf ${dir}: ${result.stderr.trim()}`);
}

/** removeTree for an exit handler or a sweep, which cannot wait on a promise. */
export function removeTreeSync(dir: string): void {
  detachMountsUnder(dir);
  const [command, ...args] = RM_TREE(dir);
  const result = spawnSync(command!, args, { encoding: 'utf8', timeout: 300_000 });
  if (result.status !== 0) throw new Error(`rm -rf ${dir}: ${(result.stderr ?? String(result.error)).trim()}`);
}

/**
 * Which processes' mount namespaces have something mounted at `point`, and
 * how: for an error that says a directory is busy. One line per mount
 * namespace (the first process seen in it), "none" when no namespace has it.
 */
export function whoMounts(point: string): string {
  const seen = new Map<string, string>();
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const lines = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter((line) => line.split(' ')[4] === point);
      if (lines.length === 0) continue;
      const ns = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 120);
      const key = lines.join('|');
      if (!seen.has(key)) seen.set(key, `pid ${pid} (${ns}): ${lines.map((l) => l.split(' - ')[0]).join('; ')}`);
    } catch {
      // The process went away, or is not ours to read.
    }
  }
  return seen.size === 0 ? 'none' : [...seen.values()].join('\n');
}
