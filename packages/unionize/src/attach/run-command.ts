import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** One program run: an argument array (never a shell) and optional stdin. */
export interface Command {
  file: string;
  args: readonly string[];
  /** Written to stdin, e.g. an `ip -batch -` script. */
  input?: string;
  /** Added to (or overriding) unionize's environment for this program. */
  env?: Readonly<Record<string, string>>;
  /** Open descriptors the child gets as fd 3, 4, ... (e.g. a namespace to `nsenter --net=/proc/self/fd/3`). */
  extraFds?: readonly number[];
  /**
   * Append stdout and stderr to this file instead of collecting them, and
   * wait for the program's exit, not for its output to close: for a program
   * that forks a daemon which keeps them open (`dhclient -nw`).
   */
  logFile?: string;
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
  if (command.logFile !== undefined) return runLogged(command, command.logFile, timeoutMs);
  return new Promise((resolve, reject) => {
    const child = spawn(command.file, command.args, {
      stdio: ['pipe', 'pipe', 'pipe', ...(command.extraFds ?? [])],
      timeout: timeoutMs,
      env: environment(command),
    }) as ChildProcessWithoutNullStreams;
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
      reject(failure(command, code, signal, stderr));
    });
    child.stdin.end(command.input ?? '');
  });
}

function environment(command: Command): NodeJS.ProcessEnv {
  return command.env === undefined ? process.env : { ...process.env, ...command.env };
}

function failure(command: Command, code: number | null, signal: NodeJS.Signals | null, stderr: string): CommandError {
  const why = signal ? `killed by ${signal}` : `exit ${code}`;
  const detail = stderr.trim().replace(/\s*\n\s*/g, '; ');
  return new CommandError(command, code, stderr, `${describeCommand(command)}: ${why}${detail ? `: ${detail}` : ''}`);
}

/** The last lines a logged command wrote, for its error message. */
function logTail(file: string, from: number): string {
  try {
    return readFileSync(file).subarray(from).toString('utf8').trim().split('\n').slice(-3).join('\n');
  } catch {
    return '';
  }
}

function runLogged(command: Command, logFile: string, timeoutMs: number): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a', 0o600);
    let from = 0;
    try {
      from = readFileSync(logFile).length;
    } catch {
      /* new file */
    }
    let child;
    try {
      child = spawn(command.file, command.args, {
        stdio: ['ignore', fd, fd, ...(command.extraFds ?? [])],
        timeout: timeoutMs,
        env: environment(command),
      });
    } finally {
      closeSync(fd);
    }
    child.once('error', (error) => reject(new CommandError(command, null, '', `${describeCommand(command)}: ${error.message}`)));
    child.once('exit', (code, signal) => {
      if (code === 0) return resolve({ stdout: '', stderr: '' });
      reject(failure(command, code, signal, logTail(logFile, from)));
    });
  });
}
