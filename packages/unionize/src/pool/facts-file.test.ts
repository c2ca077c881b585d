import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeIntoContainer } from './facts-file.js';

const ID = 'c'.repeat(64);

describe('writeIntoContainer', () => {
  let proc: string;
  let root: string;
  let outside: string;
  beforeEach(() => {
    proc = mkdtempSync(join(tmpdir(), 'facts-proc-'));
    root = join(proc, '42', 'root');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(proc, '42', 'cgroup'), `0::/system.slice/docker-${ID}.scope\n`);
    outside = mkdtempSync(join(tmpdir(), 'facts-outside-'));
  });
  afterEach(() => {
    rmSync(proc, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('makes the directories it needs and writes the file, replacing an older one', async () => {
    await writeIntoContainer(42, '/run/unionize/device.env', Buffer.from('A=1\n'), { containerId: ID, procRoot: proc });
    await writeIntoContainer(42, '/run/unionize/device.env', Buffer.from('B=2\n'), { containerId: ID, procRoot: proc });
    expect(readFileSync(join(root, 'run/unionize/device.env'), 'utf8')).toBe('B=2\n');
  });

  it('sets the modes asked for whatever the umask, so another user in the container reads the file', async () => {
    const umask = process.umask(0o077);
    try {
      await writeIntoContainer(42, '/run/unionize/device.env', Buffer.from('A=1\n'), { containerId: ID, procRoot: proc });
    } finally {
      process.umask(umask);
    }
    expect(statSync(join(root, 'run/unionize')).mode & 0o777).toBe(0o755);
    expect(statSync(join(root, 'run/unionize/device.env')).mode & 0o777).toBe(0o644);
  });

  it('refuses a process that is not the container\'s (a PID reused since the inspect)', async () => {
    await expect(writeIntoContainer(42, '/run/x', Buffer.from('A=1\n'), { containerId: 'd'.repeat(64), procRoot: proc })).rejects.toThrow(/not container dddddddddddd's/);
    expect(existsSync(join(root, 'run'))).toBe(false);
  });

  it('refuses a directory on the way that is a link, and writes nothing through it', async () => {
    symlinkSync(outside, join(root, 'run'));
    await expect(writeIntoContainer(42, '/run/unionize/device.env', Buffer.from('A=1\n'), { containerId: ID, procRoot: proc })).rejects.toThrow(/not a directory \(a link\?\)/);
    expect(existsSync(join(outside, 'unionize'))).toBe(false);
  });

  it('refuses a file that is a link', async () => {
    mkdirSync(join(root, 'run/unionize'), { recursive: true });
    symlinkSync(join(outside, 'x'), join(root, 'run/unionize/device.env'));
    await expect(writeIntoContainer(42, '/run/unionize/device.env', Buffer.from('A=1\n'), { containerId: ID, procRoot: proc })).rejects.toThrow(/ELOOP/);
    expect(existsSync(join(outside, 'x'))).toBe(false);
  });

  it('refuses relative paths, .., and no process', async () => {
    await expect(writeIntoContainer(42, 'run/x', Buffer.alloc(0), { containerId: ID, procRoot: proc })).rejects.toThrow(/absolute/);
    await expect(writeIntoContainer(42, '/run/../etc/x', Buffer.alloc(0), { containerId: ID, procRoot: proc })).rejects.toThrow(/absolute/);
    await expect(writeIntoContainer(0, '/run/x', Buffer.alloc(0), { containerId: ID, procRoot: proc })).rejects.toThrow(/no process/);
  });
});
