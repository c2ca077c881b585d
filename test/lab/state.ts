import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeTreeSync } from './mounts.js';
import type { LogFn } from './teardown.js';

/**
 * A small record of what a running lab owns, in /run/unionize-lab/<name>.json
 * (tmpfs: it goes away on reboot, like namespaces do). It lets the exit
 * handler clean up synchronously, and lets the next lab sweep what a killed
 * test run (SIGKILL, OOM) left behind. A process is identified by PID and
 * start time, so a reused PID is never signalled.
 */
export const REGISTRY_DIR = '/run/unionize-lab';

export interface OwnedProcess {
  name: string;
  pid: number;
  startTime: string;
  /** dockerd needs SIGTERM and time to stop its containers and containerd. */
  graceful?: boolean;
}

export interface LabStateData {
  name: string;
  dir: string;
  keepDir: boolean;
  owner: { pid: number; startTime: string };
  netns: string[];
  rootLinks: string[];
  processes: OwnedProcess[];
  /** Directories to remove besides the lab dir (a private docker data root). */
  removeDirs: string[];
  lockFiles: string[];
  stopped: boolean;
}

/**
 * A live process's start time (clock ticks since boot), or undefined when it
 * is gone. A zombie counts as gone: PID 1 in some sandboxes never reaps.
 */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

export class LabState {
  readonly file: string;
  readonly data: LabStateData;

  constructor(name: string, dir: string, keepDir: boolean) {
    mkdirSync(REGISTRY_DIR, { recursive: true, mode: 0o700 });
    this.file = join(REGISTRY_DIR, `${name}.json`);
    this.data = {
      name,
      dir,
      keepDir,
      owner: { pid: process.pid, startTime: procStartTime(process.pid) ?? '' },
      netns: [],
      rootLinks: [],
      processes: [],
      removeDirs: [],
      lockFiles: [],
      stopped: false,
    };
    this.save();
  }

  save(): void {
    writeFileSync(this.file, JSON.stringify(this.data, null, 2), { mode: 0o600 });
  }

  addProcess(name: string, pid: number, graceful = false): void {
    const startTime = procStartTime(pid);
    if (startTime === undefined) return;
    this.data.processes.push({ name, pid, startTime, graceful });
    this.save();
  }

  removeProcess(pid: number): void {
    this.data.processes = this.data.processes.filter((p) => p.pid !== pid);
    this.save();
  }

  add(kind: 'netns' | 'rootLinks' | 'removeDirs' | 'lockFiles', value: string): void {
    this.data[kind].push(value);
    this.save();
  }

  remove(kind: 'netns' | 'rootLinks' | 'removeDirs' | 'lockFiles', value: string): void {
    this.data[kind] = this.data[kind].filter((v) => v !== value);
    this.save();
  }

  discard(): void {
    rmSync(this.file, { force: true });
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function signalOwned(p: OwnedProcess, signal: NodeJS.Signals): boolean {
  if (procStartTime(p.pid) !== p.startTime) return false;
  try {
    process.kill(p.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Synchronous cleanup of everything a state records: owned processes (dockerd
 * gracefully), any process still inside the lab's namespaces (all started by
 * the lab), the namespaces, the root-namespace link, and the directories,
 * after detaching what a killed dockerd left mounted in them (its exec root's
 * network namespaces, a private data root's overlays). It never throws: each
 * step runs, and what could not be undone comes back, one line each.
 */
export function cleanupStateSync(data: LabStateData, log: LogFn): string[] {
  const failures: string[] = [];
  const step = (what: string, action: () => void): void => {
    try {
      action();
    } catch (error) {
      failures.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  for (const p of data.processes.filter((x) => !x.graceful)) signalOwned(p, 'SIGKILL');
  for (const p of data.processes.filter((x) => x.graceful)) {
    if (!signalOwned(p, 'SIGTERM')) continue;
    for (let i = 0; i < 150 && procStartTime(p.pid) === p.startTime; i++) sleepSync(100);
    signalOwned(p, 'SIGKILL');
  }
  for (const ns of data.netns) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  for (const link of data.rootLinks) spawnSync('ip', ['link', 'del', link], { stdio: 'ignore' });
  for (const ns of data.netns) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  for (const file of data.lockFiles) step(`lock ${file}`, () => rmSync(file, { force: true }));
  for (const dir of data.removeDirs) step(`dir ${dir}`, () => removeTreeSync(dir));
  if (!data.keepDir) step(`lab dir ${data.dir}`, () => removeTreeSync(data.dir));
  if (failures.length === 0) log(`lab ${data.name}: cleaned up synchronously`);
  else log(`lab ${data.name}: cleaned up synchronously, except:\n  ${failures.join('\n  ')}`);
  return failures;
}

/**
 * Clean up labs whose owning process is gone (a test run killed with SIGKILL,
 * a worker that ended before its lab's teardown). What cannot be cleaned up
 * is logged and its record kept for the next sweep: another lab's leftovers
 * never stop this one from starting.
 */
export function sweepStaleLabs(log: LogFn): string[] {
  if (!existsSync(REGISTRY_DIR)) return [];
  const swept: string[] = [];
  for (const entry of readdirSync(REGISTRY_DIR)) {
    if (!entry.endsWith('.json')) continue;
    const file = join(REGISTRY_DIR, entry);
    let data: LabStateData;
    try {
      data = JSON.parse(readFileSync(file, 'utf8')) as LabStateData;
    } catch {
      continue;
    }
    if (procStartTime(data.owner.pid) === data.owner.startTime) continue; // still running
    log(`lab ${data.name}: owner ${data.owner.pid} is gone; sweeping what it left`);
    if (cleanupStateSync(data, log).length > 0) {
      log(`lab ${data.name}: record ${file} kept for the next sweep`);
      continue;
    }
    try {
      unlinkSync(file);
    } catch {
      /* raced with another sweeper */
    }
    swept.push(data.name);
  }
  return swept;
}
