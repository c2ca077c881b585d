import { readFileSync } from 'node:fs';

/** Figures about processes, from /proc (proc(5)). */

/** VmRSS and VmHWM (peak) of a process, in MB; undefined when it is gone. */
export function rssOf(pid: number | undefined): { rssMb: number; hwmMb: number; comm: string } | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    const comm = /^Name:\s+(\S+)/m.exec(status)?.[1] ?? '?';
    return { rssMb: Math.round(kb('VmRSS') / 102.4) / 10, hwmMb: Math.round(kb('VmHWM') / 102.4) / 10, comm };
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used, ms; clock ticks are 100 a second on Linux. */
export function cpuMsOf(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** This process's CPU time, ms. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
