import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { labSkipReason } from './lab/lab.js';
import { run, sleep, waitFor } from './lab/process.js';
import { repoRoot } from './lab/repo.js';
import { processesMentioning } from './support/left-behind.js';

/**
 * `npm run demo` is stopped the way services and supervisors stop programs:
 * SIGTERM (or SIGINT) to npm's own PID, or to its whole process group. Either
 * way the demo tears the lab down (namespaces, daemons, dockerd and its
 * containers) within 30 s, and its logs stay in the folder it printed.
 */

const skipReason = labSkipReason({ daemons: true, hook: true });
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

interface RunningDemo {
  npm: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startDemo(): RunningDemo {
  // detached: npm leads a process group of its own, as under a supervisor or a terminal.
  const npm = spawn('npm', ['run', '--silent', 'demo', '--', '--devices', '1'], {
    cwd: repoRoot(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // (npm keeps a compile cache in the temporary folder unless told not to.)
    env: { ...process.env, NO_COLOR: '1', NODE_DISABLE_COMPILE_CACHE: '1' },
  });
  let text = '';
  npm.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  npm.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
  return { npm, output: () => text, exited };
}

let demo: RunningDemo | undefined;
let logDir: string | undefined;

afterEach(async () => {
  // A failed check must not leave a running lab: stop the whole group, then wait for it.
  if (demo && demo.npm.exitCode === null && demo.npm.pid) {
    try {
      process.kill(-demo.npm.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    await Promise.race([demo.exited, sleep(60_000)]);
  }
  if (logDir) rmSync(logDir, { recursive: true, force: true });
  demo = undefined;
  logDir = undefined;
});

describe.skipIf(skipReason)(`the demo stops cleanly on a signal${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const cases: Array<{ how: string; signal: NodeJS.Signals; group: boolean }> = [
    { how: "SIGTERM to npm's PID", signal: 'SIGTERM', group: false },
    { how: "SIGINT to npm's process group (Ctrl-C)", signal: 'SIGINT', group: true },
  ];

  for (const { how, signal, group } of cases) {
    it(`${how}: lab torn down within 30 s, logs kept`, { timeout: 240_000 }, async () => {
      demo = startDemo();
      const running = demo;
      const ready = await waitFor(
        'the demo to be ready',
        () => (running.output().includes('tears everything down') ? true : undefined),
        {
          timeoutMs: 180_000,
          intervalMs: 250,
          abort: () => (running.npm.exitCode !== null ? `the demo exited ${running.npm.exitCode}:\n${running.output()}` : undefined),
        },
      );
      expect(ready).toBe(true);
      logDir = /^logs: (\S+)/m.exec(running.output())?.[1];
      expect(logDir, running.output()).toBeDefined();
      const labName = basename(logDir!);
      const labDir = join(tmpdir(), `unionize-lab-${labName}`);
      expect(processesMentioning(labDir).length).toBeGreaterThan(0);

      const sentAt = Date.now();
      process.kill(group ? -running.npm.pid! : running.npm.pid!, signal);
      const code = await Promise.race([running.exited, sleep(30_000).then(() => 'still running' as const)]);
      expect(code, running.output()).not.toBe('still running');
      console.log(`demo: ${how}: exited ${String(code)} ${Date.now() - sentAt} ms after the signal`);

      // Everything the lab made is gone: its namespaces, its processes (dockerd, containerd, the
      // containers' processes, dnsmasq, dhclient, the daemons), its registry entry and its folder.
      const netns = (await run(['ip', 'netns', 'list'])).stdout;
      expect(netns.split('\n').filter((line) => line.startsWith(`${labName}-`))).toEqual([]);
      expect(processesMentioning(labDir)).toEqual([]);
      expect(existsSync(`/run/unionize-lab/${labName}.json`)).toBe(false);
      expect(existsSync(labDir)).toBe(false);
      // The logs are what is left, to read after the fact.
      expect(readFileSync(join(logDir!, 'orchestrator.log'), 'utf8')).toContain('"msg"');
      expect(readFileSync(join(logDir!, 'lab.log'), 'utf8')).toMatch(/stopped in \d+ ms/);
    });
  }
});
