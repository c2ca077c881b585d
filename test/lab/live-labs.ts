import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The log folders of the labs running in this process (each with its devices' folder), so a failed test can show what their daemons and devices said. */
const liveLogDirs = new Set<readonly string[]>();

export function trackLabLogs(...dirs: string[]): () => void {
  liveLogDirs.add(dirs);
  return () => liveLogDirs.delete(dirs);
}

function logFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? logFiles(join(dir, e.name)) : e.name.endsWith('.log') ? [join(dir, e.name)] : []));
}

/** The last `bytes` of a file, from its first whole line. */
function tailOf(file: string, bytes: number): string {
  const size = statSync(file).size;
  const start = Math.max(0, size - bytes);
  const buffer = Buffer.alloc(size - start);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, start);
  } finally {
    closeSync(fd);
  }
  const text = buffer.toString('utf8');
  return start > 0 ? text.slice(text.indexOf('\n') + 1) : text;
}

/**
 * The tail of every log of every live lab (daemons, dnsmasq and its hook,
 * each device's dhclient), long lines cut: what a failed end-to-end test
 * prints, since the lab's folder goes with the lab.
 */
export function liveLabLogTails(bytesPerFile = 6000, lineChars = 500): string {
  const parts: string[] = [];
  for (const dirs of liveLogDirs) {
    for (const file of [...new Set(dirs.flatMap(logFiles))].sort()) {
      let tail: string;
      try {
        tail = tailOf(file, bytesPerFile);
      } catch (error) {
        tail = `(unreadable: ${(error as Error).message})`;
      }
      const lines = tail.split('\n').filter((l) => l !== '').map((l) => (l.length > lineChars ? `${l.slice(0, lineChars)}…` : l));
      parts.push(`--- ${relative(join(dirs[0]!, '..'), file)} (last ${lines.length} lines) ---`, ...lines);
    }
  }
  return parts.join('\n');
}
