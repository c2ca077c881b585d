import { spawn } from 'node:child_process';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Log = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

export interface LoggerOptions {
  /** Where JSON lines go; stderr by default (dnsmasq logs its script's stderr). */
  write?: (line: string) => void;
  /** Also hand error lines to syslog through logger(1), fire and forget. */
  syslog?: boolean;
  /** Lowest level written; default info. */
  level?: Level;
}

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One JSON line per record, like the daemons' logs. */
export function createLogger(options: LoggerOptions = {}): Log {
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const min = RANK[options.level ?? 'info'];
  return (level, msg, fields = {}) => {
    if (RANK[level] < min) return;
    write(`${JSON.stringify({ level, time: new Date().toISOString(), name: 'orchestrator-hook', pid: process.pid, msg, ...fields })}\n`);
    if (level === 'error' && options.syslog) toSyslog(msg, fields);
  };
}

/**
 * Errors here mean an event was lost or refused: worth a syslog line besides
 * dnsmasq's log. logger(1) is started detached and not waited for, so it costs
 * the hook a fork, not a round trip; where it is missing nothing happens.
 */
function toSyslog(msg: string, fields: Record<string, unknown>): void {
  try {
    const text = `${msg} ${JSON.stringify(fields)}`.slice(0, 2000);
    const child = spawn('logger', ['-t', 'orchestrator-hook', '-p', 'daemon.err', '--', text], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    /* no logger(1): stderr has it */
  }
}
