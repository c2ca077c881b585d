import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAttachCommand } from '../cli/attach-command.js';
import { DockerEngineClient } from '../docker/docker-client.js';
import { expandIpv6 } from '../net/ipv6.js';
import { DhcpClients } from './dhcp-client.js';
import { NativeAttacher } from './native.js';
import { readLinks, readNetnsState } from './netns-state.js';
import { hostVethName } from './plan.js';
import { integrationEnv, integrationSkipReason } from '../testing/integration-env.js';
import { DHCP_ADDRESS } from '@unionize/protocol';

/**
 * DHCP addressing for real: a dnsmasq serving DHCPv6 and router
 * advertisements on the container bridge (as the container bridge's dnsmasq
 * will), dhclient in a busybox container's namespace, our script putting the
 * lease on eth1. Run by test/unionize-docker.test.ts inside the lab's
 * docker-host namespace, where UNIONIZE_TEST_BRIDGE carries
 * UNIONIZE_TEST_GATEWAY/64 (see docker-client.integration.test.ts).
 *
 * The only file of the suite that starts a dnsmasq (the files run in parallel,
 * and two servers on one bridge would fight).
 */


const { socket, image, bridge, gateway } = integrationEnv;
const skip = integrationSkipReason();

/** `fd3c:12ab:9f00:3::1` → `fd3c:12ab:9f00:3`: the /64 of the bridge. */
const prefix64 = expandIpv6(gateway).slice(0, 16).match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, '')).join(':');
const inRange = (address: string | null | undefined) => {
  if (!address) return false;
  const hex = expandIpv6(address.split('/')[0]!);
  return hex.startsWith(expandIpv6(`${prefix64}::`).slice(0, 16)) && /^0{12}1[0-9a-f]{3}$/.test(hex.slice(16));
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, check: () => Promise<T | null | undefined> | T | null | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

interface HookCall {
  argv: string[];
  mac: string;
  iaid: string;
  interface: string;
}

describe.skipIf(skip !== null)(`DHCP addressing with dhclient and a real dnsmasq${skip ? `: skipped, ${skip}` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ua-dhcp-it-'));
  const stateDir = join(dir, 'state');
  const hookLog = join(dir, 'hook.log');
  const docker = new DockerEngineClient({ socketPath: socket ?? '' });
  const clients = new DhcpClients({ stateDir });
  const attacher = new NativeAttacher({ bridge, gateway, dhcp: clients, leaseWaitMs: 10_000 });
  const tag = process.pid.toString(36);
  const ids: string[] = [];
  const timings: Record<string, number> = {};
  let dnsmasq: ChildProcess | undefined;

  /** Every dnsmasq script call: argv, and the environment the orchestrator-hook would read. */
  const hookCalls = (): HookCall[] =>
    existsSync(hookLog)
      ? readFileSync(hookLog, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as HookCall)
      : [];

  async function makeContainer(name: string, mac: string): Promise<number> {
    const id = await docker.create({ name, image, labels: {}, env: {}, mac, address: DHCP_ADDRESS });
    ids.push(id);
    await docker.start(id);
    const info = await docker.inspectByName(name);
    expect(info?.pid).toBeGreaterThan(0);
    return info!.pid;
  }

  beforeAll(async () => {
    // A recorder in place of orchestrator-hook: one JSON line per call.
    const hook = join(dir, 'hook');
    writeFileSync(
      hook,
      '#!/bin/sh\n' +
        `printf '{"argv":["%s","%s","%s","%s"],"mac":"%s","iaid":"%s","interface":"%s"}\\n' ` +
        `"$1" "$2" "$3" "$4" "$DNSMASQ_MAC" "$DNSMASQ_IAID" "$DNSMASQ_INTERFACE" >> '${hookLog}'\n`,
    );
    chmodSync(hook, 0o755);
    chmodSync(dir, 0o755);
    const log = join(dir, 'dnsmasq.log');
    dnsmasq = spawn(
      'dnsmasq',
      [
        '--no-daemon', '--conf-file=/dev/null', '--port=0', `--interface=${bridge}`, '--bind-interfaces',
        `--dhcp-range=${prefix64}::1000,${prefix64}::1fff,64,600`, '--enable-ra',
        `--dhcp-script=${hook}`, `--dhcp-leasefile=${join(dir, 'leases')}`, '--pid-file=', `--log-facility=${log}`, '--log-dhcp',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    dnsmasq.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    await waitFor('dnsmasq to bind', () => {
      if (dnsmasq?.exitCode !== null) throw new Error(`dnsmasq exited ${dnsmasq?.exitCode}: ${stderr.trim()}`);
      return existsSync(log) && readFileSync(log, 'utf8').includes('sockets bound exclusively');
    }, 5_000);
  });

  afterAll(async () => {
    for (const id of ids) await docker.remove(id).catch(() => undefined);
    await clients.reap();
    if (dnsmasq && dnsmasq.exitCode === null) {
      const exited = new Promise((resolve) => dnsmasq!.once('exit', resolve));
      dnsmasq.kill('SIGTERM');
      await Promise.race([exited, sleep(3_000)]);
      if (dnsmasq.exitCode === null) dnsmasq.kill('SIGKILL');
      // Gone before its folder goes: on a loaded machine it (or its script helper) could still write the lease file or the hook log.
      await exited;
    }
    console.log(`dhcp-mode timings (ms): ${JSON.stringify(timings)}`);
    // A dhclient reaped a moment ago may still have a file open in state/: retried, not raced (ENOTEMPTY in CI under load).
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });

  it('attaches eth1 with the MAC, leases an address from the bridge dnsmasq, gets the default route from its RA', async () => {
    const name = `ua-dhcp-${tag}-a`;
    const mac = '02:00:00:00:dc:01';
    const pid = await makeContainer(name, mac);
    const target = { name, pid, mac, address: DHCP_ADDRESS };
    const started = performance.now();
    const attaching = attacher.attach(target);
    // When the lease shows on eth1; attach itself returns once the RA's default route is there too.
    void waitFor('the lease on eth1', async () => (await attacher.addressOf(target)) ?? undefined, 10_000)
      .then(() => (timings.leaseOnEth1 = Math.round(performance.now() - started)))
      .catch(() => undefined);
    const result = await attaching;
    timings.attachLeaseAndRoute = Math.round(performance.now() - started);
    expect(result.changed).toBe(true);
    expect(inRange(result.address), `leased ${result.address}`).toBe(true);
    expect(result.address).toMatch(/\/128$/);
    expect(await attacher.addressOf(target)).toBe(result.address);
    expect(await attacher.isAttached(target)).toBe(true);

    // Router advertisements give the default route (DHCPv6 carries none), via the bridge's link-local address.
    await waitFor('a default route from the RA', async () => {
      const state = await readNetnsState(`/proc/${pid}/net`);
      return state.defaultRoutes.find((r) => r.dev === 'eth1' && r.via.startsWith('fe80'));
    });
    timings.attachToDefaultRoute = Math.round(performance.now() - started);
    const address = result.address!.split('/')[0]!;
    execFileSync('ping', ['-6', '-c', '1', '-W', '2', address], { stdio: 'pipe' });

    // What the container bridge's dnsmasq tells its hook: DUID-LL from the MAC, the MAC, IAID from its last four octets.
    const add = await waitFor('the hook add call', () => hookCalls().find((c) => c.argv[0] === 'add' && c.mac === mac));
    expect(add.argv.slice(0, 4)).toEqual(['add', `00:03:00:01:${mac}`, address, name]);
    expect(add).toMatchObject({ iaid: String(parseInt('0000dc01', 16)), interface: bridge });

    // Again: nothing to do.
    expect(await attacher.attach(target)).toMatchObject({ changed: false, spawns: 0, address: result.address });
  });

  it('after a container restart, replaces the stale client (it held the old namespace) and leases again', async () => {
    const name = `ua-dhcp-${tag}-a`;
    const mac = '02:00:00:00:dc:01';
    const before = Number(readFileSync(join(stateDir, name, 'dhclient.pid'), 'utf8'));
    await new Docker({ socketPath: socket! }).getContainer(ids[0]!).restart({ t: 0 });
    const info = await docker.inspectByName(name);
    const target = { name, pid: info!.pid, mac, address: DHCP_ADDRESS };
    expect(await clients.state(target)).toBe('stale');
    expect(await attacher.isAttached(target)).toBe(false);
    const started = performance.now();
    const result = await attacher.attach(target);
    timings.reattachAfterRestart = Math.round(performance.now() - started);
    expect(inRange(result.address), `leased ${result.address}`).toBe(true);
    expect(isRunning(before)).toBe(false);
    expect(await clients.state(target)).toBe('running');
  });

  it('on DELETE stops dhclient with a Release (dnsmasq reports del) and the veth goes', async () => {
    const name = `ua-dhcp-${tag}-a`;
    const mac = '02:00:00:00:dc:01';
    const info = await docker.inspectByName(name);
    const clientPid = Number(readFileSync(join(stateDir, name, 'dhclient.pid'), 'utf8'));
    expect(await docker.remove(info!.id)).toBe(true);
    const started = performance.now();
    await attacher.detach(name);
    timings.detachWithRelease = Math.round(performance.now() - started);
    const del = await waitFor('the hook del call', () => hookCalls().find((c) => c.argv[0] === 'del' && c.mac === mac), 5_000);
    expect(del.argv[1]).toBe(`00:03:00:01:${mac}`);
    expect(isRunning(clientPid)).toBe(false);
    expect(existsSync(join(stateDir, name))).toBe(false);
    // The kernel frees the namespace (and so the veth) only once its last holder is gone: slow on a loaded machine.
    await waitFor('the host veth to go', async () => !(await readLinks('/proc/self/net')).has(hostVethName(name)), 20_000);
  });

  it('reaps the client of a container removed behind our back (and after a unionize restart)', async () => {
    const name = `ua-dhcp-${tag}-b`;
    const mac = '02:00:00:00:dc:02';
    const pid = await makeContainer(name, mac);
    const result = await attacher.attach({ name, pid, mac, address: DHCP_ADDRESS });
    expect(inRange(result.address)).toBe(true);
    const clientPid = Number(readFileSync(join(stateDir, name, 'dhclient.pid'), 'utf8'));
    expect(await clients.reap()).toEqual([]);
    await docker.remove(ids.at(-1)!);
    // A new manager on the same state directory: what a restarted unionize has.
    expect(await new DhcpClients({ stateDir }).reap()).toEqual([name]);
    expect(isRunning(clientPid)).toBe(false);
    // The kernel frees the namespace (and so the veth) only once its last holder is gone: slow on a loaded machine.
    await waitFor('the host veth to go', async () => !(await readLinks('/proc/self/net')).has(hostVethName(name)), 20_000);
  });

  it('unionize attach BRIDGE CONTAINER dhcp MAC does the same by hand', async () => {
    const name = `ua-dhcp-${tag}-c`;
    const mac = '02:00:00:00:dc:03';
    const pid = await makeContainer(name, mac);
    const started = performance.now();
    const status = await runAttachCommand(['--docker-socket', socket!, '--state-dir', stateDir, bridge, name, 'dhcp', mac]);
    timings.cliAttachWithLease = Math.round(performance.now() - started);
    expect(status).toBe(0);
    const state = await readNetnsState(`/proc/${pid}/net`);
    const leased = state.addresses.find((a) => a.dev === 'eth1' && !a.address.startsWith('fe80'));
    expect(leased?.prefixLength).toBe(128);
    const link = JSON.parse(execFileSync('nsenter', ['-t', String(pid), '-n', 'ip', '-j', 'link', 'show', 'dev', 'eth1'], { encoding: 'utf8' })) as Array<{ address: string }>;
    expect(link[0]?.address).toBe(mac);
    await docker.remove(ids.at(-1)!);
    expect(await clients.reap()).toEqual([name]);
  });
});

function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}
