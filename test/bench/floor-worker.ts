import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { NativeAttacher, containerCreateOptions, type CreateSpec } from '@unionize/unionize';

/**
 * The container floor, run by test/bench/floor.ts inside the lab's docker-host
 * namespace (`ip netns exec <dock> node floor-worker.js ...`): raw dockerode
 * (create with the body unionize sends, start, inspect) and unionize's
 * NativeAttacher, with nothing of unionize's API, locking or checks around
 * them. One container = create, start, inspect (for the PID, as the attach
 * needs it) and the native attach (its `ip -batch` and
 * `nsenter ip -6 -batch`, planned by unionize's plan.ts), i.e. the least any
 * agent must do to give a container its address.
 *
 * Commands arrive as JSON lines on stdin, answers go as JSON lines to stdout:
 *   {"op":"one"}                          one container, then remove it
 *   {"op":"burst","n":20,"concurrency":8} n containers with a pool of workers, then remove them
 *   {"op":"quit"}
 */

const { values } = parseArgs({
  options: {
    socket: { type: 'string' },
    bridge: { type: 'string' },
    gateway: { type: 'string' },
    /** The container /64 without `::`, e.g. fd3c:12ab:9f00:3. */
    prefix: { type: 'string' },
    image: { type: 'string', default: 'unionize-client:latest' },
  },
});
if (!values.socket || !values.bridge || !values.gateway || !values.prefix) {
  process.stderr.write('usage: floor-worker --socket S --bridge B --gateway G --prefix P\n');
  process.exit(2);
}
const prefix = values.prefix;
const image = values.image!;
const docker = new Docker({ socketPath: values.socket });
const attacher = new NativeAttacher({ bridge: values.bridge, gateway: values.gateway });
const tag = randomBytes(3).toString('hex');
let made = 0;

interface Made {
  name: string;
  id: string;
  createMs: number;
  startMs: number;
  inspectMs: number;
  attachMs: number;
  totalMs: number;
  /** eth1 checked after the clock stopped (not timed). */
  attached: boolean;
  /** ms since the command started, when this container was ready. */
  doneAtMs: number;
}

const r = (x: number) => Math.round(x * 10) / 10;

function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

async function makeOne(since: number): Promise<Made> {
  const k = ++made;
  // Far above the orchestrator's pool, which hands out the lowest free offset from 0x100.
  const address = `${prefix}::be:${k.toString(16)}`;
  const mac = randomMac();
  const spec: CreateSpec = { name: `bench-floor-${tag}-${k}`, image, labels: {}, env: {}, mac, address: `${address}/64` };
  const t0 = performance.now();
  const container = await docker.createContainer(containerCreateOptions(spec));
  const t1 = performance.now();
  await container.start();
  const t2 = performance.now();
  const info = await container.inspect();
  if (info.State.Pid <= 0) throw new Error(`${spec.name}: not running after start (${info.State.Status})`);
  const t3 = performance.now();
  const id = container.id;
  const target = { name: spec.name, pid: info.State.Pid, mac, address: `${address}/64` };
  await attacher.attach(target);
  const t4 = performance.now();
  const attached = await attacher.isAttached(target);
  return {
    name: spec.name, id,
    createMs: r(t1 - t0), startMs: r(t2 - t1), inspectMs: r(t3 - t2), attachMs: r(t4 - t3), totalMs: r(t4 - t0),
    attached, doneAtMs: r(t4 - since),
  };
}

async function removeAll(containers: readonly Made[], concurrency: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < containers.length; i = next++) {
      const c = containers[i]!;
      await docker.getContainer(c.id).remove({ force: true });
      await attacher.detach(c.name).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, containers.length)) }, worker));
  return r(performance.now() - t0);
}

async function burst(n: number, concurrency: number): Promise<{ wallMs: number; containers: Made[]; removeMs: number }> {
  const t0 = performance.now();
  const containers: Made[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) containers.push(await makeOne(t0));
  };
  // Every worker runs to its end (allSettled): what was made is removed even when one failed.
  const settled = await Promise.allSettled(Array.from({ length: Math.min(concurrency, n) }, worker));
  const wallMs = r(performance.now() - t0);
  const removeMs = await removeAll(containers, concurrency);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return { wallMs, containers, removeMs };
}

async function handle(line: string): Promise<unknown> {
  const command = JSON.parse(line) as { op: string; n?: number; concurrency?: number };
  switch (command.op) {
    case 'one': {
      const result = await burst(1, 1);
      return { ...result.containers[0], removeMs: result.removeMs };
    }
    case 'burst':
      return burst(command.n ?? 1, command.concurrency ?? 8);
    case 'quit':
      process.exit(0);
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

// One command at a time, in order: the caller waits for each answer.
let chain = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  chain = chain.then(async () => {
    try {
      process.stdout.write(`${JSON.stringify({ ok: true, result: await handle(line) })}\n`);
    } catch (error) {
      process.stdout.write(`${JSON.stringify({ ok: false, error: (error as Error).message })}\n`);
    }
  });
}).on('close', () => {
  void chain.then(() => process.exit(0));
});
process.stdout.write(`${JSON.stringify({ ok: true, result: 'ready' })}\n`);
