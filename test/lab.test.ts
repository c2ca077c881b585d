import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { run, waitFor } from './lab/process.js';
import { procStartTime } from './lab/state.js';

/**
 * Self-test of the lab itself, without orchestrator and unionize: real
 * dnsmasq, dhclient, dockerd and namespaces, with a stand-in hook that logs
 * each dnsmasq call.
 */

interface HookCall {
  argv: string[];
  env: Record<string, string>;
}

function readHookCalls(file: string): HookCall[] {
  if (!existsSync(file)) return [];
  const calls: HookCall[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === 'call') calls.push({ argv: [], env: {} });
    const current = calls[calls.length - 1];
    if (!current) continue;
    if (line.startsWith('arg ')) current.argv.push(line.slice(4));
    if (line.startsWith('env ')) {
      const [key, ...rest] = line.slice(4).split('=');
      current.env[key!] = rest.join('=');
    }
  }
  return calls;
}

function rootForwarding(): string {
  return ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding']
    .map((f) => readFileSync(f, 'utf8').trim())
    .join(',');
}

const skipReason = labSkipReason();

describe.skipIf(skipReason)(`lab self-test${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let lab: Lab;
  let scratch: string;
  let hookLog: string;
  const forwardingBefore = rootForwarding();
  const lines: string[] = [];

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'lab-selftest-'));
    hookLog = join(scratch, 'hook.log');
    const hook = join(scratch, 'hook.sh');
    writeFileSync(
      hook,
      `#!/bin/sh
{ echo call; for a in "$@"; do echo "arg $a"; done; env | grep '^DNSMASQ_' | sed 's/^/env /'; } >> '${hookLog}'
`,
      { mode: 0o755 },
    );
    lab = await startLab({ devices: 2, daemons: false, docker: true, hookCommand: hook, leaseSeconds: 120, log: (l) => lines.push(l) });
  });

  afterAll(async () => {
    if (lab) await lab.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (process.env.LAB_VERBOSE === '1') console.log(lines.join('\n'));
  });

  it('leases both devices with distinct DUIDs and tells the hook (add)', async () => {
    const [d1, d2] = lab.devices;
    const started = Date.now();
    const [l1, l2] = await Promise.all([lab.lease(d1!), lab.lease(d2!)]);
    lines.push(`two leases in ${Date.now() - started} ms`);
    expect(l1.duid).not.toBe(l2.duid);
    for (const lease of [l1, l2]) {
      expect(lease.duid).toMatch(/^([0-9a-f]{2}:)+[0-9a-f]{2}$/);
      expect(lease.address.startsWith(`${lab.prefix}:1::`)).toBe(true);
    }
    const calls = await waitFor('two add calls', () => {
      const adds = readHookCalls(hookLog).filter((c) => c.argv[0] === 'add');
      return adds.length >= 2 ? adds : undefined;
    });
    for (const [device, lease] of [[d1!, l1], [d2!, l2]] as const) {
      const call = calls.find((c) => c.argv[1] === lease.duid);
      expect(call, `add call for ${lease.duid}`).toBeDefined();
      expect(call!.argv).toEqual(['add', lease.duid, lease.address, device.hostname]);
      expect(call!.env.DNSMASQ_IAID).toBe(lease.iaid);
      expect(call!.env.DNSMASQ_MAC).toBe(device.mac);
      expect(call!.env.DNSMASQ_INTERFACE).toBe('brdev');
    }
    lines.push(`hook call: ${JSON.stringify(calls[0])}`);
  });

  it('routes: device to the device bridge, to the docker host, and to the other device', async () => {
    const d2 = await lab.lease(2); // already leased: returns the current lease
    expect(await lab.ping(1, lab.addresses.orchBridge)).toBe(true);
    expect(await lab.ping(1, lab.addresses.dockTransit)).toBe(true);
    expect(await lab.ping(1, lab.addresses.dockBridge)).toBe(true);
    expect(await lab.ping(1, d2.address)).toBe(true);
  });

  it('serves the client image on the container bridge to a device', async () => {
    const l1 = await lab.lease(1);
    const container = await lab.docker.createContainer({
      Image: 'unionize-client:latest',
      name: `labtest-${lab.names.lab}`,
      Labels: { 'io.unionize.managed': 'true' },
      Env: [`DEVICE_DUID=${l1.duid}`, `DEVICE_HOSTNAME=${l1.hostname}`, `DEVICE_ADDRESS=${l1.address}`],
      HostConfig: {
        NetworkMode: 'none',
        Sysctls: { 'net.ipv6.conf.all.disable_ipv6': '0', 'net.ipv6.conf.default.disable_ipv6': '0' },
      },
    });
    await container.start();
    const pid = String((await container.inspect()).State.Pid);
    // What the unionize agent does (attach = native), by hand.
    const dock = lab.names.dock;
    const address = `${lab.prefix}:3::100`;
    const steps = [
      ['ip', 'link', 'add', 'vlabtest', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', pid],
      ['ip', 'link', 'set', 'vlabtest', 'master', 'brctr', 'up'],
      ['nsenter', '-t', pid, '-n', 'ip', '-6', 'addr', 'add', `${address}/64`, 'dev', 'eth1', 'nodad'],
      ['nsenter', '-t', pid, '-n', 'ip', 'link', 'set', 'eth1', 'up'],
      ['nsenter', '-t', pid, '-n', 'ip', '-6', 'route', 'add', 'default', 'via', lab.addresses.dockBridge],
    ];
    for (const step of steps) expect((await lab.run(dock, step)).stderr).toBe('');
    const page = await waitFor('the page', async () => {
      const res = await lab.httpGet(1, `http://[${address}]/`);
      return res.status === 200 ? res : undefined;
    }, { timeoutMs: 10_000 });
    expect(page.body).toContain(`<p>device DUID: ${l1.duid}</p>`);
  });

  it('releases one device and the hook sees del', async () => {
    const l2 = await lab.lease(2);
    await lab.release(2);
    const del = await waitFor('a del call', () => readHookCalls(hookLog).find((c) => c.argv[0] === 'del' && c.argv[1] === l2.duid));
    expect(del.argv[2]).toBe(l2.address);
    const left = await lab.run(lab.devices[1]!, ['ip', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    expect(left.stdout).not.toContain(l2.address);
    lines.push(`hook del: ${JSON.stringify(del)}`);
  });

  it('never changes forwarding in the root namespace', () => {
    expect(rootForwarding()).toBe(forwardingBefore);
  });

  it('leaves nothing behind after stop()', async () => {
    const pids = (lab as unknown as { state: { data: { processes: { pid: number; startTime: string }[] } } }).state.data.processes.map((p) => ({ ...p }));
    const containers = await lab.docker.listContainers({ all: true, filters: { label: ['io.unionize.managed=true'] } });
    expect(containers.length).toBeGreaterThan(0);
    await lab.stop();
    const netns = (await run(['ip', 'netns', 'list'])).stdout;
    expect(netns).not.toContain(lab.names.lab);
    expect((await run(['ip', 'link', 'show', lab.names.rootLink])).code).not.toBe(0);
    for (const p of pids) expect(procStartTime(p.pid), `process ${p.pid}`).not.toBe(p.startTime);
    expect(existsSync(lab.dir)).toBe(process.env.KEEP_LAB === '1');
    expect(existsSync(`/run/unionize-lab/${lab.names.lab}.json`)).toBe(false);
    expect(rootForwarding()).toBe(forwardingBefore);
  });
});
