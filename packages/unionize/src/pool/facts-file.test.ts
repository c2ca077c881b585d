import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeIntoContainer } from './facts-file.js';

describe('writeIntoContainer', () => {
  let proc: string;
  let root: string;
  let outside: string;
  beforeEach(() => {
    proc = mkdtempSync(join(tmpdir(), 'facts-proc-'));
    root = join(proc, '42', 'root');
    mkdirSync(root, { recursive: true });
    outside = mkdtempSync(join(tmpdir(), 'facts-outside-'));
  });
  afterEach(() => {
    rmSync(proc, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('makes the directories it needs and writes the file, replacing an older one', async () => {
    await writeIntoContainer(42, '/run/unionize/device.env', Buffer.from('A=1\n'), 0o644, proc);
    await writeIntoContainer(42, '/run/unionize/device.env', Buffer.from('B=2\n'), 0o644, proc);
    expect(readFileSync(join(root, 'run/unionize/device.env'), 'utf8')).toBe('B=2\n');
  });

  it('refuses a directory on the way that is a link, and writes nothing through it', async () => {
    symlinkSync(outside, join(root, 'run'));
    await expect(writeIntoContainer(42, '/run/unionize/device.env', Buffer.from('A=1\n'), 0o644, proc)).rejects.toThrow(/not a directory \(a link\?\)/);
    expect(existsSync(join(outside, 'unionize'))).toBe(false);
  });

  it('refuses a file that is a link', async () => {
    mkdirSync(join(root, 'run/unionize'), { recursive: true });
    symlinkSync(join(outside, 'x'), join(root, 'run/unionize/device.env'));
    await expect(writeIntoContainer(42, '/run/unionize/device.env', Buffer.from('A=1\n'), 0o644, proc)).rejects.toThrow(/ELOOP/);
    expect(existsSync(join(outside, 'x'))).toBe(false);
  });

  it('refuses relative paths, .., and no process', async () => {
    await expect(writeIntoContainer(42, 'run/x', Buffer.alloc(0), 0o644, proc)).rejects.toThrow(/absolute/);
    await expect(writeIntoContainer(42, '/run/../etc/x', Buffer.alloc(0), 0o644, proc)).rejects.toThrow(/absolute/);
    await expect(writeIntoContainer(0, '/run/x', Buffer.alloc(0), 0o644, proc)).rejects.toThrow(/no process/);
  });
});
