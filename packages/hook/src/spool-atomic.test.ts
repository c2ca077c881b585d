import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LeaseEvent } from '@unionize/protocol/lease-event';
import { Spool } from './spool.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

/** Records the file-system calls `put` makes, and can fail the rename, to check the write protocol. */
const calls: string[] = [];
let failRename = false;
let atRename: ((from: string, to: string) => void) | undefined;

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const fds = new Map<number, string>();
  return {
    ...real,
    openSync: (path: fs.PathLike, ...rest: unknown[]) => {
      const fd = (real.openSync as (...a: unknown[]) => number)(path, ...rest);
      fds.set(fd, String(path));
      calls.push(`open ${String(path)}`);
      return fd;
    },
    writeSync: (fd: number, ...rest: unknown[]) => {
      calls.push(`write ${fds.get(fd)}`);
      return (real.writeSync as (...a: unknown[]) => number)(fd, ...rest);
    },
    fsyncSync: (fd: number) => {
      calls.push(`fsync ${fds.get(fd)}`);
      real.fsyncSync(fd);
    },
    renameSync: (from: fs.PathLike, to: fs.PathLike) => {
      calls.push(`rename ${String(from)} -> ${String(to)}`);
      atRename?.(String(from), String(to));
      if (failRename) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
      real.renameSync(from, to);
    },
  };
});

const event = (): LeaseEvent => ({
  eventId: randomUUID(), server: 'devnet', role: 'device', action: 'add', duid: '00:03:00:01:02:aa:bb:cc:dd:01', iaid: '1',
  address: 'fd00:1::1000', hostname: 'a'.repeat(200), mac: null, interface: null, expiresAt: null, seenAt: new Date().toISOString(),
});

afterEach(() => {
  calls.length = 0;
  failRename = false;
  atRename = undefined;
});

describe('Spool.put writes atomically', () => {
  it('writes and fsyncs a temp file, renames it into place, then fsyncs the directory', () => {
    const dir = makeTempDir('hook-atomic-');
    const spool = new Spool({ dir, maxEvents: 10 });
    const e = event();
    atRename = (from, to) => {
      // Just before the rename the entry is invisible and its temp copy complete.
      expect(spool.list()).toEqual([]);
      expect(JSON.parse(fs.readFileSync(from, 'utf8'))).toEqual(e);
      expect(to.startsWith(dir)).toBe(true);
    };
    const name = spool.put(e);
    const temp = join(dir, `.tmp-${name}`);
    const steps = calls.filter((c) => c.includes(temp) || c === `open ${dir}` || c === `fsync ${dir}`);
    expect(steps).toEqual([`open ${temp}`, `write ${temp}`, `fsync ${temp}`, `rename ${temp} -> ${join(dir, name)}`, `open ${dir}`, `fsync ${dir}`]);
    expect(spool.list()).toEqual([name]);
  });

  it('a failed write leaves neither the entry nor its temp file', () => {
    const dir = makeTempDir('hook-atomic-');
    const spool = new Spool({ dir, maxEvents: 10 });
    failRename = true;
    expect(() => spool.put(event())).toThrow(expect.objectContaining({ code: 'HOOK_SPOOL_UNWRITABLE' }));
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
