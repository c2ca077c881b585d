import { readFileSync } from 'node:fs';
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

/**
 * Lazily detach whatever is mounted below `dir` (a killed dockerd's network
 * namespaces and overlays, a debootstrap's /proc and /sys), deepest first, so
 * the directory can go. Returns how many it detached.
 */
export async function detachMountsUnder(dir: string): Promise<number> {
  const points = mountsUnder(dir).sort((a, b) => b.length - a.length);
  for (const point of points) await run(['umount', '--lazy', point]);
  return points.length;
}

/**
 * Remove a directory tree that something may have mounted into: detach the
 * mounts first, then `rm --one-file-system`, which never follows a mount it
 * missed into the machine's own /proc, /sys or /dev.
 */
export async function removeTree(dir: string): Promise<void> {
  await detachMountsUnder(dir);
  const result = await run(['rm', '-rf', '--one-file-system', dir], { timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`rm -rf ${dir}: ${result.stderr.trim()}`);
}
