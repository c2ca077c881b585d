import { describe, expect, it } from 'vitest';
import type { Command } from '../attach/run-command.js';
import type { DockerClient } from '../docker/docker-client.js';
import { createMetrics } from '../metrics/metrics.js';
import { Isolation } from './isolation.js';

function recorder(fail?: () => boolean) {
  const runs: Command[] = [];
  const run = async (command: Command) => {
    runs.push(command);
    if (fail?.()) throw new Error('nft: Operation not permitted');
    return { stdout: '', stderr: '' };
  };
  return { runs, run };
}

const entry = (devices: string[], container: string | null, port = 'vh1') => ({ devices, container, port });

describe('Isolation', () => {
  it('writes the whole ruleset through nft -f - (no shell), once per change', async () => {
    const { runs, run } = recorder();
    const isolation = new Isolation({ mode: 'filter', gateway: 'fd01:3::1', egress: { kind: 'none' }, run });
    await isolation.set('c1', entry(['fd01:1::1000'], 'fd01:3::100'));
    await isolation.set('c1', entry(['fd01:1::1000'], 'fd01:3::100'));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ file: 'nft', args: ['-f', '-'] });
    expect(runs[0]!.input).toContain('fd01:0001:0000:0000:0000:0000:0000:1000 . fd01:0003:0000:0000:0000:0000:0000:0100');

    await isolation.set('c1', entry(['fd01:1::2000'], 'fd01:3::100'));
    expect(runs).toHaveLength(2);
    expect(runs[1]!.input).not.toContain(':1000 .');
    expect(runs[1]!.input).toContain('fd01:0001:0000:0000:0000:0000:0000:2000 . ');
  });

  it('forgetting a container drops its pairs and its port', async () => {
    const { runs, run } = recorder();
    const isolation = new Isolation({ mode: 'filter', gateway: 'fd01:3::1', egress: { kind: 'none' }, run });
    await isolation.set('c1', entry(['fd01:1::1000'], 'fd01:3::100', 'vh1'));
    await isolation.set('c2', entry(['fd01:1::1001'], 'fd01:3::101', 'vh2'));
    await isolation.forget('c1');
    const last = runs.at(-1)!.input!;
    expect(last).not.toContain('0100');
    expect(last).not.toContain('"vh1"');
    expect(last).toContain('"vh2"');
    await isolation.forget('c1');
    expect(runs).toHaveLength(3);
  });

  it('a container without an address yet has its port cut off, and no pair', async () => {
    const { runs, run } = recorder();
    const isolation = new Isolation({ mode: 'filter', gateway: 'fd01:3::1', egress: { kind: 'none' }, run });
    await isolation.set('c1', entry(['fd01:1::1000'], null, 'vh1'));
    expect(runs[0]!.input).toContain('elements = { "vh1" }');
    expect(runs[0]!.input).not.toContain('elements = { fd01');
  });

  it('a failed write is retried by the next change, even a repeated one', async () => {
    let failing = true;
    const { runs, run } = recorder(() => failing);
    const isolation = new Isolation({ mode: 'filter', gateway: 'fd01:3::1', egress: { kind: 'none' }, run });
    await expect(isolation.set('c1', entry(['fd01:1::1000'], 'fd01:3::100'))).rejects.toThrow(/not permitted/);
    failing = false;
    await isolation.set('c1', entry(['fd01:1::1000'], 'fd01:3::100'));
    expect(runs).toHaveLength(2);
    failing = true;
    await expect(isolation.forget('c1')).rejects.toThrow();
    failing = false;
    // The container is gone from memory, but the kernel may still let its device in: forgetting again writes.
    await isolation.forget('c1');
    expect(runs).toHaveLength(4);
    expect(runs[3]!.input).not.toContain('0100');
  });

  it('mode open writes only the tables\' removal and never filters', async () => {
    const { runs, run } = recorder();
    const isolation = new Isolation({ mode: 'open', gateway: 'fd01:3::1', egress: { kind: 'none' }, run });
    await isolation.set('c1', entry(['fd01:1::1000'], 'fd01:3::100'));
    expect(runs).toHaveLength(0);
    await isolation.write();
    expect(runs[0]!.input).toBe('table bridge unionize\ndelete table bridge unionize\n');
  });

  it('a batch writes nothing until the caller writes', async () => {
    const { runs, run } = recorder();
    const isolation = new Isolation({ mode: 'filter', gateway: 'fd01:3::1', egress: { kind: 'none' }, run });
    await isolation.batch(async () => {
      await isolation.set('c1', entry(['fd01:1::1000'], 'fd01:3::100', 'vh1'));
      await isolation.set('c2', entry(['fd01:1::1001'], 'fd01:3::101', 'vh2'));
    });
    expect(runs).toHaveLength(0);
    await isolation.write();
    expect(runs).toHaveLength(1);
    expect(runs[0]!.input).toContain('elements = { "vh1", "vh2" }');
  });

  it('concurrent changes end with the latest state written last', async () => {
    const { runs, run } = recorder();
    const isolation = new Isolation({ mode: 'filter', gateway: 'fd01:3::1', egress: { kind: 'none' }, run });
    await Promise.all([
      isolation.set('c1', entry(['fd01:1::1000'], 'fd01:3::100', 'vh1')),
      isolation.set('c2', entry(['fd01:1::1001'], 'fd01:3::101', 'vh2')),
      isolation.forget('c1'),
    ]);
    const last = runs.at(-1)!.input!;
    expect(last).toContain('"vh2"');
    expect(last).not.toContain('"vh1"');
  });
});

describe('isolation metrics', () => {
  it('counts the pairs allowed and the writes that failed', async () => {
    let failing = false;
    const { run } = recorder(() => failing);
    const isolation = new Isolation({ mode: 'filter', gateway: 'fd01:3::1', egress: { kind: 'none' }, run });
    const docker = { listManaged: async () => [] } as unknown as DockerClient;
    const metrics = createMetrics({ docker, isolation });
    await isolation.set('c1', entry(['fd01:1::1000', 'fd01:1::1001'], 'fd01:3::100', 'vh1'));
    await isolation.set('c2', entry(['fd01:1::2000'], null, 'vh2'));
    failing = true;
    await expect(isolation.forget('c1')).rejects.toThrow();
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^unionize_isolation_pairs 0$/m);
    expect(text).toMatch(/^unionize_isolation_write_failures_total 1$/m);
    failing = false;
    await isolation.set('c2', entry(['fd01:1::2000'], 'fd01:3::200', 'vh2'));
    expect(await metrics.registry.metrics()).toMatch(/^unionize_isolation_pairs 1$/m);
  });

  it('mode open has no isolation metrics', async () => {
    const isolation = new Isolation({ mode: 'open', gateway: 'fd01:3::1', egress: { kind: 'none' }, run: recorder().run });
    const metrics = createMetrics({ docker: { listManaged: async () => [] } as unknown as DockerClient, isolation });
    expect(await metrics.registry.metrics()).not.toContain('unionize_isolation');
  });
});
