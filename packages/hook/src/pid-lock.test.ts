import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, selfIdentity, tryLock, type ProcessIdentity } from './pid-lock.js';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';

const tmp = () => makeTempDir('hook-lock-');
const children: { kill(): unknown }[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill();
});

/** The PID of a process that has exited and been reaped. */
function deadPid(): number {
  return Number(execFileSync('sh', ['-c', 'sh -c "exit 0" & echo $!; wait']).toString().trim());
}

describe('tryLock', () => {
  it('gives the lock to one holder; others see who holds it until it is released', () => {
    const file = join(tmp(), '.lock');
    const first = tryLock(file);
    expect(first.ok).toBe(true);
    expect(readFileSync(file, 'utf8')).toMatch(new RegExp(`^${process.pid} [0-9]+\\n$`));
    // Another process (here: another identity of a live process) is refused.
    const other: ProcessIdentity = { pid: process.pid, startTime: selfIdentity().startTime };
    expect(tryLock(file, { pid: 1, startTime: null })).toEqual({ ok: false, heldBy: process.pid });
    if (first.ok) first.lock.release();
    const second = tryLock(file, other);
    expect(second.ok).toBe(true);
    if (second.ok) second.lock.release();
    expect(existsSync(file)).toBe(false);
  });

  it('breaks a lock whose owner has exited', () => {
    const file = join(tmp(), '.lock');
    writeFileSync(file, `${deadPid()} 123\n`);
    const attempt = tryLock(file);
    expect(attempt.ok).toBe(true);
    if (attempt.ok) attempt.lock.release();
  });

  it('breaks a lock whose owner is a zombie (exited, not reaped)', async () => {
    // `sh` forks a short `sleep` and execs a long one, which never reaps it: the short one stays a zombie.
    // (A child that exits before the exec may still be reaped by sh itself: hence not `true &`.)
    const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(parent);
    const zombie = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    // Bounded wait: on a loaded machine `true` can take a while to run and exit.
    for (let i = 0; i < 250 && !readFileSync(`/proc/${zombie}/stat`, 'utf8').includes(') Z '); i++) await new Promise((r) => setTimeout(r, 20));
    expect(readFileSync(`/proc/${zombie}/stat`, 'utf8')).toContain(') Z ');
    expect(isAlive({ pid: zombie, startTime: null })).toBe(false);

    const file = join(tmp(), '.lock');
    writeFileSync(file, `${zombie} -\n`);
    expect(tryLock(file).ok).toBe(true);
  });

  it('breaks a lock whose PID now belongs to another process (start time differs)', () => {
    const file = join(tmp(), '.lock');
    writeFileSync(file, `${process.pid} 1\n`);
    expect(isAlive({ pid: process.pid, startTime: '1' })).toBe(false);
    expect(tryLock(file).ok).toBe(true);
  });

  it('keeps a lock whose owner is alive', () => {
    const file = join(tmp(), '.lock');
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(sleeper);
    writeFileSync(file, `${sleeper.pid} -\n`);
    expect(tryLock(file)).toEqual({ ok: false, heldBy: sleeper.pid });
  });

  it('does not release a lock that is no longer its own', () => {
    const file = join(tmp(), '.lock');
    const attempt = tryLock(file);
    if (!attempt.ok) throw new Error('expected the lock');
    writeFileSync(file, '1 -\n'); // someone else's now (cannot happen unless broken; never delete it)
    attempt.lock.release();
    expect(readFileSync(file, 'utf8')).toBe('1 -\n');
  });

  const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'pid-lock.js');
  it.skipIf(!existsSync(dist))('excludes across processes: 6 processes, 20 turns each, no overlap (needs a build)', async () => {
    const dir = tmp();
    const file = join(dir, '.lock');
    const trace = join(dir, 'trace');
    writeFileSync(trace, '');
    // Start with a stale lock, so breaking it races too.
    writeFileSync(file, `${deadPid()} 1\n`);
    const script = `
      import { tryLock } from ${JSON.stringify(dist)};
      import { appendFileSync } from 'node:fs';
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      let turns = 0;
      while (turns < 20) {
        const a = tryLock(${JSON.stringify(file)});
        if (!a.ok) { await sleep(1); continue; }
        appendFileSync(${JSON.stringify(trace)}, 'in ' + process.pid + '\\n');
        await sleep(2);
        appendFileSync(${JSON.stringify(trace)}, 'out ' + process.pid + '\\n');
        a.lock.release();
        turns++;
      }`;
    const runs = Array.from({ length: 6 }, () => new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
      children.push(child);
      child.on('exit', (code) => resolve(code ?? -1));
    }));
    expect(await Promise.all(runs)).toEqual([0, 0, 0, 0, 0, 0]);
    const lines = readFileSync(trace, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(6 * 20 * 2);
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]).toMatch(/^in /);
      expect(lines[i + 1]).toBe(lines[i]!.replace('in', 'out'));
    }
  }, 60_000);
});
