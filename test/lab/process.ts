import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** Child processes of the lab: always argument arrays, never a shell. */

/** PATH with the sbin directories, where ip, dnsmasq, dhclient and dockerd live. */
export const LAB_PATH = [
  ...new Set([...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin']),
].join(':');

export function labEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: LAB_PATH, ...extra };
}

export interface CommandResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Kill the command (SIGKILL, it is ours) after this long; default 60 s. */
  timeoutMs?: number;
  input?: string;
}

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly argv: readonly string[],
    readonly result: CommandResult,
  ) {
    const how = result.signal ? `signal ${result.signal}` : `exit ${result.code}`;
    const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join(' | ');
    super(`${argv.join(' ')}: ${how}${detail ? `: ${detail}` : ''}`);
  }
}

/** Run a command to completion and collect its output; never throws for a non-zero exit. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new Error('run: empty argv'));
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: options.env ?? labEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: 127, signal: null, stdout, stderr: `${stderr}${error.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** Run a command and throw a CommandError (with its stderr) unless it exits 0. */
export async function mustRun(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const result = await run(argv, options);
  if (result.code !== 0 || result.signal) throw new CommandError(argv, result);
  return result;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A long-running child whose stdout and stderr go to a log file. */
export class ManagedProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;

  constructor(
    readonly name: string,
    readonly argv: readonly string[],
    readonly logFile: string,
    private readonly child: ChildProcess,
  ) {
    this.pid = child.pid ?? -1;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      child.on('error', () => {
        this.exitInfo ??= { code: 127, signal: null };
        resolve(this.exitInfo);
      });
    });
  }

  get running(): boolean {
    return this.exitInfo === undefined && this.pid > 0;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Send a signal to this process only (by PID). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM (or `signal`), then SIGKILL when it has not exited after `graceMs`. */
  async stop(options: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<ExitInfo> {
    if (!this.running) return this.exitInfo ?? { code: null, signal: null };
    this.child.kill(options.signal ?? 'SIGTERM');
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), options.graceMs ?? 5000));
    if ((await Promise.race([this.exited, timer])) === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    return this.exitInfo ?? { code: null, signal: null };
  }

  /** The last lines of the log, for error messages. */
  tail(lines = 15): string {
    return tailFile(this.logFile, lines);
  }
}

export function spawnManaged(
  name: string,
  argv: readonly string[],
  options: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): ManagedProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error(`spawn ${name}: empty argv`);
  const fd = openSync(options.logFile, 'a', 0o600);
  try {
    const child = spawn(file, args, {
      env: options.env ?? labEnv(),
      cwd: options.cwd,
      stdio: ['ignore', fd, fd],
    });
    return new ManagedProcess(name, argv, options.logFile, child);
  } finally {
    closeSync(fd);
  }
}

export function tailFile(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Whether a process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `check` until it returns a value other than undefined, or throw after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number; abort?: () => string | undefined } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    const aborted = options.abort?.();
    if (aborted) throw new Error(`waiting for ${what}: ${aborted}`);
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${what}${why}`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}
