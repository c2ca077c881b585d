import { spawn } from 'node:child_process';

/** One program run: an argument array (never a shell) and optional stdin. */
export interface Command {
  file: string;
  args: readonly string[];
  /** Written to stdin, e.g. an `ip -batch -` script. */
  input?: string;
}

export interface CommandOutput {
  stdout: string;
  stderr: string;
}

export type CommandRunner = (command: Command) => Promise<CommandOutput>;

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly command: Command,
    readonly exitCode: number | null,
    readonly stderr: string,
    message: string,
  ) {
    super(message);
  }
}

export function describeCommand(command: Command): string {
  return [command.file, ...command.args].join(' ');
}

/**
 * Run a command without a shell; reject with its stderr when it fails, cannot
 * start, or outlives `timeoutMs` (then it is killed).
 */
export function runCommand(command: Command, timeoutMs = 10_000): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.file, command.args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // A program that exits before reading stdin gives EPIPE here; its exit status tells the story.
    child.stdin.on('error', () => {});
    child.once('error', (error) => {
      reject(new CommandError(command, null, stderr, `${describeCommand(command)}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      if (code === 0) return resolve({ stdout, stderr });
      const why = signal ? `killed by ${signal}` : `exit ${code}`;
      const detail = stderr.trim().replace(/\s*\n\s*/g, '; ');
      reject(new CommandError(command, code, stderr, `${describeCommand(command)}: ${why}${detail ? `: ${detail}` : ''}`));
    });
    child.stdin.end(command.input ?? '');
  });
}
