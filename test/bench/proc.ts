import { readFileSync } from 'node:fs';

/** Figures about processes, from /proc (proc(5)). */

/**
 * VmRSS and VmHWM (peak) of a process, in MB, and VmRSS split into its
 * anonymous memory (heaps, stacks) and its file pages (mostly node's own
 * binary, shared and reclaimable); undefined when it is gone.
 */
export function rssOf(pid: number | undefined): { rssMb: number; hwmMb: number; anonMb: number; fileMb: number; comm: string } | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    const comm = /^Name:\s+(\S+)/m.exec(status)?.[1] ?? '?';
    const mb = (key: string) => Math.round(kb(key) / 102.4) / 10;
    return { rssMb: mb('VmRSS'), hwmMb: mb('VmHWM'), anonMb: mb('RssAnon'), fileMb: mb('RssFile'), comm };
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
