import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Writes a file into a running container's filesystem through its init's
 * root (`/proc/PID/root`): a file write, where Docker's archive API (PUT
 * /containers/{id}/archive) costs a re-exec'd untar of 30-50 ms here.
 *
 * Only for a pool member being claimed: no device has had it yet, so what
 * runs in it is the operator's image alone. Even so, nothing on the way may
 * be a symbolic link (one inside the container would be resolved against
 * this process's root, the host's): every directory is checked with lstat,
 * made if missing, and the file is opened with O_NOFOLLOW. The process must
 * still be the container's (`containerId` in its cgroup: a PID reused since
 * the inspect is refused). Modes are set as asked, whatever the daemon's umask
 * (the unit's 0077), so an image that runs as another user reads the file.
 */
export async function writeIntoContainer(pid: number, path: string, data: Buffer, options: { containerId: string; mode?: number; procRoot?: string }): Promise<void> {
  const { containerId, mode = 0o644, procRoot = '/proc' } = options;
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no process to write into (pid ${pid})`);
  if (!path.startsWith('/') || path.split('/').includes('..')) throw new Error(`${path}: not an absolute path without ..`);
  const cgroup = await readFile(join(procRoot, String(pid), 'cgroup'), 'utf8').catch(() => '');
  if (!/^[0-9a-f]{64}$/.test(containerId) || !cgroup.includes(containerId)) throw new Error(`process ${pid} is not container ${containerId.slice(0, 12)}'s (its cgroup does not name it)`);
  const root = join(procRoot, String(pid), 'root');
  const parts = dirname(path).split('/').filter(Boolean);
  let dir = root;
  for (const part of parts) {
    dir = join(dir, part);
    const made = await mkdir(dir, { mode: 0o755 }).then(() => true, (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
      return false;
    });
    const stat = await lstat(dir);
    if (stat.isSymbolicLink() || !stat.isDirectory()) throw new Error(`${dir.slice(root.length) || '/'}: in the container, not a directory (a link?): not written`);
    if (made) await chmod(dir, 0o755);
  }
  const file = await open(join(root, path), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode);
  try {
    await file.chmod(mode);
    await file.writeFile(data);
  } finally {
    await file.close();
  }
}
