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
});
