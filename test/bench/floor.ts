import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../lab/lab.js';
import { labEnv } from '../lab/process.js';

/** One container made by floor-worker.ts: per-step times in ms. */
export interface FloorContainer {
  name: string;
  createMs: number;
  startMs: number;
  inspectMs: number;
  attachMs: number;
  totalMs: number;
  attached: boolean;
  doneAtMs: number;
}

export interface FloorBurst {
  wallMs: number;
  containers: FloorContainer[];
  removeMs: number;
}

/**
 * Drives floor-worker.js, a long-lived node process in the lab's docker-host
 * namespace (where unionize runs, so its veths land on the same bridge), one
 * command at a time. Long-lived so that node's start-up is not in the floor,
 * as it is not in unionize's figures either; and so that floor runs can be
 * interleaved with the product's on a machine whose load drifts.
 */
export class Floor {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #answers: Array<(line: string) => void> = [];
  #stderr = '';

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    createInterface({ input: child.stdout }).on('line', (line) => this.#answers.shift()?.(line));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (this.#stderr = (this.#stderr + d).slice(-2000)));
  }

  static async start(lab: Lab): Promise<Floor> {
    const worker = join(fileURLToPath(new URL('.', import.meta.url)), 'floor-worker.js');
    const child = spawn(
      'ip',
      [
        'netns', 'exec', lab.names.dock, process.execPath, worker,
        '--socket', lab.dockerSocket, '--bridge', lab.names.containerBridge,
        '--gateway', `${lab.prefix}:3::1`, '--prefix', `${lab.prefix}:3`,
      ],
      { env: labEnv(), stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const floor = new Floor(child);
    const ready = await floor.#next(30_000);
    if (ready !== 'ready') throw new Error(`floor worker did not start: ${JSON.stringify(ready)}`);
    return floor;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** One container, alone: create, start, inspect, attach; then it is removed (not timed). */
  one(): Promise<FloorContainer> {
    return this.#call({ op: 'one' }, 60_000) as Promise<FloorContainer>;
  }

  /** n containers with `concurrency` workers; then they are removed. */
  burst(n: number, concurrency: number): Promise<FloorBurst> {
    return this.#call({ op: 'burst', n, concurrency }, 60_000 + n * 5_000) as Promise<FloorBurst>;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.stdin.end(`${JSON.stringify({ op: 'quit' })}\n`);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  async #call(command: object, timeoutMs: number): Promise<unknown> {
    this.#child.stdin.write(`${JSON.stringify(command)}\n`);
    return this.#next(timeoutMs);
  }

  #next(timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`floor worker: no answer in ${timeoutMs} ms; stderr: ${this.#stderr.trim()}`)), timeoutMs);
      const onExit = () => reject(new Error(`floor worker exited; stderr: ${this.#stderr.trim()}`));
      this.#child.once('exit', onExit);
      this.#answers.push((line) => {
        clearTimeout(timer);
        this.#child.off('exit', onExit);
        const answer = JSON.parse(line) as { ok: boolean; result?: unknown; error?: string };
        if (answer.ok) resolve(answer.result);
        else reject(new Error(`floor worker: ${answer.error}`));
      });
    });
  }
}
