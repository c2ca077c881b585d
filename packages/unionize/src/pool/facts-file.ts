import { constants } from 'node:fs';
import { lstat, mkdir, open } from 'node:fs/promises';
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
 * made if missing, and the file is opened with O_NOFOLLOW.
 */
export async function writeIntoContainer(pid: number, path: string, data: Buffer, mode = 0o644, procRoot = '/proc'): Promise<void> {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no process to write into (pid ${pid})`);
  if (!path.startsWith('/') || path.split('/').includes('..')) throw new Error(`${path}: not an absolute path without ..`);
  const root = join(procRoot, String(pid), 'root');
  const parts = dirname(path).split('/').filter(Boolean);
  let dir = root;
  for (const part of parts) {
    dir = join(dir, part);
    await mkdir(dir, { mode: 0o755 }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    const stat = await lstat(dir);
    if (stat.isSymbolicLink() || !stat.isDirectory()) throw new Error(`${dir.slice(root.length) || '/'}: in the container, not a directory (a link?): not written`);
  }
  const file = await open(join(root, path), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode);
  try {
    await file.writeFile(data);
  } finally {
    await file.close();
  }
}
