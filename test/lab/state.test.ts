import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mountsUnder } from './mounts.js';
import { labSkipReason } from './prereqs.js';
import { REGISTRY_DIR, sweepStaleLabs, type LabStateData } from './state.js';

/**
 * The sweep of what a gone lab left: a dockerd killed with its lab leaves its
 * exec root's network namespaces mounted in the lab's directory, and one lab's
 * leftovers must never stop the next lab from starting.
 */
const skipReason = labSkipReason();
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

const mount = (...args: string[]): void => {
  const result = spawnSync('mount', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`mount ${args.join(' ')}: ${result.stderr}`);
};

describe.skipIf(skipReason)('sweeping a gone lab', () => {
  const made: { record: string; dir: string }[] = [];

  /** A record as a lab whose worker died would have left it: its owner is a process that has exited. */
  const staleLab = (label: string, extra: Partial<LabStateData> = {}): { name: string; dir: string; record: string } => {
    const name = `sweep-${label}-${process.pid}`;
    const dir = mkdtempSync(join(tmpdir(), `${name}-`));
    const gone = spawnSync('true');
    const data: LabStateData = {
      name,
      dir,
      keepDir: false,
      owner: { pid: gone.pid!, startTime: '1' },
      netns: [],
      rootLinks: [],
      processes: [],
      removeDirs: [],
      lockFiles: [],
      stopped: false,
      ...extra,
    };
    mkdirSync(REGISTRY_DIR, { recursive: true, mode: 0o700 });
    const record = join(REGISTRY_DIR, `${name}.json`);
    writeFileSync(record, JSON.stringify(data), { mode: 0o600 });
    made.push({ record, dir });
    return { name, dir, record };
  };

  afterEach(() => {
    for (const { record, dir } of made.splice(0)) {
      for (const point of mountsUnder(dir).sort((a, b) => b.length - a.length)) spawnSync('umount', ['--lazy', point]);
      spawnSync('umount', ['--lazy', dir]);
      rmSync(record, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("detaches what a killed dockerd left mounted in the lab's directory, then removes it and its record", () => {
    const lab = staleLab('mounted');
    // Like a dockerd exec root: a network namespace bound on a file, under a tmpfs of its own.
    const execRoot = join(lab.dir, 'docker-exec');
    mkdirSync(execRoot);
    mount('-t', 'tmpfs', '-o', 'size=1m', 'lab-sweep-test', execRoot);
    mkdirSync(join(execRoot, 'netns'));
    writeFileSync(join(execRoot, 'netns', 'abc'), '');
    mount('--bind', '/proc/self/ns/net', join(execRoot, 'netns', 'abc'));
    expect(mountsUnder(lab.dir)).toHaveLength(2);

    const lines: string[] = [];
    expect(sweepStaleLabs((line) => lines.push(line))).toContain(lab.name);
    expect(existsSync(lab.dir)).toBe(false);
    expect(existsSync(lab.record)).toBe(false);
    expect(mountsUnder(lab.dir)).toEqual([]);
    expect(lines.join('\n')).toContain(`lab ${lab.name}: cleaned up synchronously`);
  });

  it('logs what it cannot remove, keeps the record for the next sweep, and does not throw', () => {
    // A directory that cannot be removed: its files sit on a read-only mount above it, which is not the lab's to detach.
    const readOnly = mkdtempSync(join(tmpdir(), 'sweep-readonly-'));
    made.push({ record: '/nonexistent', dir: readOnly });
    mount('-t', 'tmpfs', '-o', 'size=1m', 'lab-sweep-test', readOnly);
    mkdirSync(join(readOnly, 'data-root'));
    writeFileSync(join(readOnly, 'data-root', 'file'), 'x');
    mount('-o', 'remount,ro', readOnly);
    const stuck = join(readOnly, 'data-root');
    const lab = staleLab('stuck', { removeDirs: [stuck] });

    const lines: string[] = [];
    expect(sweepStaleLabs((line) => lines.push(line))).not.toContain(lab.name);
    const logged = lines.join('\n');
    expect(logged).toContain(`dir ${stuck}: rm -rf ${stuck}:`);
    expect(logged).toContain(`record ${lab.record} kept for the next sweep`);
    expect(existsSync(lab.record)).toBe(true);
    // The rest of that lab is still cleaned up.
    expect(existsSync(lab.dir)).toBe(false);
  });
});
