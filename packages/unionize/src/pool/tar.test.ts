import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tarOf } from './tar.js';

describe('tarOf', () => {
  it('makes a tar that GNU tar unpacks: parent directories, contents and modes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tar-test-'));
    try {
      const big = Buffer.alloc(1300, 'x');
      const tar = tarOf([
        { path: 'run/unionize/device.env', data: Buffer.from('DEVICE_DUID=00:01\n'), mode: 0o644 },
        { path: 'run/unionize/big', data: big, mode: 0o600 },
      ]);
      expect(tar.length % 512).toBe(0);
      execFileSync('tar', ['-x', '-C', dir], { input: tar });
      expect(readFileSync(join(dir, 'run/unionize/device.env'), 'utf8')).toBe('DEVICE_DUID=00:01\n');
      expect(readFileSync(join(dir, 'run/unionize/big')).equals(big)).toBe(true);
      expect(statSync(join(dir, 'run/unionize/big')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'run/unionize')).isDirectory()).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a name it would have to cut or escape', () => {
    expect(() => tarOf([{ path: '../etc/passwd x', data: Buffer.alloc(0), mode: 0o644 }])).toThrow(/not a short ASCII path/);
    expect(() => tarOf([{ path: '../etc/passwd', data: Buffer.alloc(0), mode: 0o644 }])).toThrow(/not a short ASCII path/);
    expect(() => tarOf([{ path: '/etc/passwd', data: Buffer.alloc(0), mode: 0o644 }])).toThrow(/not a short ASCII path/);
    expect(() => tarOf([{ path: 'a'.repeat(120), data: Buffer.alloc(0), mode: 0o644 }])).toThrow(/not a short ASCII path/);
  });
});
