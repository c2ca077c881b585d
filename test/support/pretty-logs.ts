import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { prettyFactory } from 'pino-pretty';

/**
 * `npm run demo -- --logs`: follow the lab's log files and print each JSON
 * line through pino-pretty, named by its source. The daemons log pino JSON;
 * the hook logs JSON lines with string levels, which dnsmasq passes on inside
 * its own log lines; anything else is printed as it is. Requests carry a
 * `requestId` (the event's id from the hook on), so one event can be
 * followed from the hook through the orchestrator to unionize.
 */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

export function prettyLine(line: string, source: string, pretty: (obj: object) => string): string | undefined {
  const start = line.indexOf('{');
  if (start >= 0) {
    try {
      const obj = JSON.parse(line.slice(start)) as Record<string, unknown>;
      if (typeof obj.msg === 'string') {
        if (typeof obj.level === 'string') obj.level = LEVELS[obj.level] ?? 30;
        if (typeof obj.time === 'string') obj.time = Date.parse(obj.time);
        obj.name ??= obj.service ?? source;
        delete obj.service;
        return pretty(obj).trimEnd();
      }
    } catch {
      /* not JSON: as it is */
    }
  }
  // dnsmasq's log-dhcp is chatty: of its own lines, only the exchanges' outcomes.
  if (source === 'dnsmasq' && !/DHCP(REPLY|RELEASE|DECLINE)\(|script/.test(line)) return undefined;
  return line.trim() ? `${source}: ${line}` : undefined;
}

/** Follow `files` from their current end, printing each new line; returns a stop function. */
export function followPretty(files: readonly string[], write: (text: string) => void, options: { colorize?: boolean; intervalMs?: number } = {}): () => void {
  const pretty = prettyFactory({ colorize: options.colorize ?? true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' });
  const state = files.map((file) => ({ file, source: basename(file).replace(/\.log$/, ''), offset: sizeOf(file), rest: '' }));
  const timer = setInterval(() => {
    for (const s of state) {
      const size = sizeOf(s.file);
      if (size < s.offset) s.offset = 0; // truncated or replaced
      if (size === s.offset) continue;
      const buffer = Buffer.alloc(size - s.offset);
      const fd = openSync(s.file, 'r');
      try {
        readSync(fd, buffer, 0, buffer.length, s.offset);
      } finally {
        closeSync(fd);
      }
      s.offset = size;
      const lines = (s.rest + buffer.toString('utf8')).split('\n');
      s.rest = lines.pop() ?? '';
      for (const line of lines) {
        const text = prettyLine(line, s.source, pretty);
        if (text) write(`${text}\n`);
      }
    }
  }, options.intervalMs ?? 200);
  timer.unref();
  return () => clearInterval(timer);
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
