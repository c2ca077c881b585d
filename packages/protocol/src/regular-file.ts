import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export type RegularFileRead = { ok: true; bytes: Buffer } | { ok: false; reason: string };

/**
 * A file's bytes, read only if it is a regular file: opened without following
 * a symbolic link (O_NOFOLLOW) and without blocking on a FIFO (O_NONBLOCK),
 * then checked on the open descriptor (fstat) before a byte is read: a
 * regular file, `check` (e.g. its mode) passed, at most `maxBytes`
 * (`limitName` names the setting in the reason). Anything else says why not.
 * The spool's reader and the key and token files' reader share it.
 */
export function readRegularFile(
  path: string,
  options: { maxBytes: number; limitName?: string; check?: (stat: Stats) => string | undefined },
): RegularFileRead {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { ok: false, reason: 'not a regular file' };
    const refused = options.check?.(stat);
    if (refused) return { ok: false, reason: refused };
    if (stat.size > options.maxBytes) return { ok: false, reason: `${stat.size} bytes, over ${options.limitName ? `${options.limitName} ` : ''}${options.maxBytes}` };
    const bytes = Buffer.alloc(stat.size);
    let read = 0;
    while (read < bytes.length) {
      const n = readSync(fd, bytes, read, bytes.length - read, read);
      if (n === 0) break;
      read += n;
    }
    return { ok: true, bytes: bytes.subarray(0, read) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ELOOP' ? 'a symbolic link' : `cannot read: ${(error as Error).message}` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
