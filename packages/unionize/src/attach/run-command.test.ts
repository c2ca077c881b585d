import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandError, runCommand } from './run-command.js';

describe('runCommand', () => {
  it('feeds stdin and collects stdout', async () => {
    expect(await runCommand({ file: 'cat', args: [], input: 'link set x up\n' })).toEqual({ stdout: 'link set x up\n', stderr: '' });
  });

  it('rejects with the exit status and stderr', async () => {
    const error = await runCommand({ file: 'sh', args: ['-c', 'echo "RTNETLINK answers: File exists" >&2; exit 2'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).exitCode).toBe(2);
    expect((error as CommandError).message).toBe('sh -c echo "RTNETLINK answers: File exists" >&2; exit 2: exit 2: RTNETLINK answers: File exists');
  });

  it('rejects when the program does not exist', async () => {
    await expect(runCommand({ file: '/nonexistent/ip', args: [] })).rejects.toThrow('/nonexistent/ip: spawn /nonexistent/ip ENOENT');
  });

  it('kills what outlives its timeout', async () => {
    await expect(runCommand({ file: 'sleep', args: ['5'] }, 50)).rejects.toThrow('killed by SIGTERM');
  });

  it('adds to the environment and hands over extra descriptors as fd 3', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ua-run-'));
    try {
      writeFileSync(join(dir, 'given'), 'through fd 3');
      const fd = openSync(join(dir, 'given'), 'r');
      try {
        const out = await runCommand({ file: 'sh', args: ['-c', 'echo "$UA_X"; cat /proc/self/fd/3'], env: { UA_X: 'set' }, extraFds: [fd] });
        expect(out.stdout).toBe('set\nthrough fd 3');
      } finally {
        closeSync(fd);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with a log file: does not wait for a daemon that keeps its output open, and quotes the log on failure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ua-run-'));
    const log = join(dir, 'log');
    try {
      const started = Date.now();
      // The background sleep keeps stdout open, as a daemonized dhclient may.
      await runCommand({ file: 'sh', args: ['-c', 'echo daemon up; sleep 3 & exit 0'], logFile: log });
      expect(Date.now() - started).toBeLessThan(2000);
      expect(readFileSync(log, 'utf8')).toContain('daemon up');
      await expect(runCommand({ file: 'sh', args: ['-c', 'echo "no such interface" >&2; exit 4'], logFile: log })).rejects.toThrow(
        'exit 4: no such interface',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
