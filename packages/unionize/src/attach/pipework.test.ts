import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AttachError } from '../errors.js';
import { hostVethName } from './plan.js';
import { PIPEWORK_PATH_DIR, PipeworkAttacher } from './pipework.js';
import { runCommand, type Command, type CommandOutput } from './run-command.js';
import { DHCP_ADDRESS } from '@unionize/protocol';

/**
 * The contract with pipework: a recording stand-in executable takes its place
 * and writes down the argv and environment it was run with; ip, nsenter and
 * sysctl are recorded without running. The real script is tried in
 * pipework.integration.test.ts when one is on PATH.
 */

const TARGET = { name: 'dev-0123456789ab', pid: 4242, mac: '02:11:22:33:44:55', address: 'fd00:3::100/64' };
const VETH = hostVethName(TARGET.name);
const DEV_HEADER = 'Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n';

let dir: string;
let proc: string;
let standIn: string;
let record: string;
let commands: Command[];

function writeNetns(who: string, links: string[], inet6 = '', routes = ''): void {
  const net = join(proc, who, 'net');
  mkdirSync(net, { recursive: true });
  writeFileSync(join(net, 'dev'), DEV_HEADER + links.map((l) => `  ${l}: 0 0\n`).join(''));
  writeFileSync(join(net, 'if_inet6'), inet6);
  writeFileSync(join(net, 'ipv6_route'), routes);
}

/** argv as the stand-in recorded it: one NUL-terminated argument each, then DOCKER_HOST. */
function recorded(): { argv: string[]; dockerHost: string } {
  const parts = readFileSync(record, 'utf8').split('\0');
  return { argv: parts.slice(0, -2), dockerHost: parts.at(-2) ?? '' };
}

function attacher(options: { exit?: number; gateway?: string | undefined } = {}): PipeworkAttacher {
  writeFileSync(
    standIn,
    `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done > '${record}'\nprintf '%s\\0' "$DOCKER_HOST" >> '${record}'\n` +
      (options.exit ? `echo "Could not locate cgroup mount point." >&2\nexit ${options.exit}\n` : 'exit 0\n'),
  );
  chmodSync(standIn, 0o755);
  return new PipeworkAttacher({
    pipework: standIn,
    bridge: 'br-ctr',
    gateway: 'gateway' in options ? options.gateway : 'fd00:3::1',
    env: { DOCKER_HOST: 'unix:///run/lab/docker.sock' },
    procRoot: proc,
    netnsDir: join(dir, 'netns'),
    run: async (command): Promise<CommandOutput> => {
      commands.push(command);
      return command.file === standIn ? runCommand(command) : { stdout: '', stderr: '' };
    },
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ua-pipework-'));
  proc = join(dir, 'proc');
  standIn = join(dir, 'pipework');
  record = join(dir, 'argv');
  commands = [];
  writeNetns('self', ['lo', 'br-ctr']);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('PipeworkAttacher', () => {
  it('runs pipework with an argument array in its own order, IPv6, no @GATEWAY, then the IPv6 default route', async () => {
    writeNetns('4242', ['lo']);
    const result = await attacher().attach(TARGET);
    expect(result).toMatchObject({ changed: true, spawns: 3, address: TARGET.address });
    expect(recorded()).toEqual({
      argv: ['br-ctr', '-i', 'eth1', '-l', VETH, '-a', '6', 'dev-0123456789ab', 'fd00:3::100/64', '02:11:22:33:44:55'],
      dockerHost: 'unix:///run/lab/docker.sock',
    });
    expect(commands.find((c) => c.file === standIn)?.env?.PATH?.split(':')[0]).toBe(PIPEWORK_PATH_DIR);
    expect(commands.map((c) => [c.file === standIn ? 'pipework' : c.file, ...c.args])).toEqual([
      ['nsenter', '-t', '4242', '-n', 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'],
      ['pipework', 'br-ctr', '-i', 'eth1', '-l', VETH, '-a', '6', 'dev-0123456789ab', 'fd00:3::100/64', '02:11:22:33:44:55'],
      ['nsenter', '-t', '4242', '-n', 'ip', '-6', 'route', 'replace', 'default', 'via', 'fd00:3::1', 'dev', 'eth1'],
    ]);
  });

  it('passes the argument untouched by any shell: a name with shell characters stays one argument', async () => {
    writeNetns('4242', ['lo']);
    await attacher().attach({ ...TARGET, name: 'a;b$(x)' }).catch(() => undefined);
    // checkSpec refuses nothing in the name (it is not in an ip batch); pipework gets it as one word.
    expect(recorded().argv[7]).toBe('a;b$(x)');
  });

  it('adds no route without a gateway', async () => {
    writeNetns('4242', ['lo']);
    await attacher({ gateway: undefined }).attach(TARGET);
    expect(commands.at(-1)?.file).toBe(standIn);
  });

  it('clears a half-done attach first: eth1 in the container, the host end here', async () => {
    writeNetns('self', ['lo', 'br-ctr', VETH]);
    writeNetns('4242', ['lo', 'eth1']);
    await attacher().attach(TARGET);
    expect(commands.slice(0, 2).map((c) => [c.file, ...c.args])).toEqual([
      ['nsenter', '-t', '4242', '-n', 'ip', 'link', 'del', 'eth1'],
      ['ip', 'link', 'del', VETH],
    ]);
  });

  it('does nothing when eth1 already holds the address and route', async () => {
    writeNetns(
      '4242',
      ['lo', 'eth1'],
      'fd000003000000000000000000000100 02 40 00 80     eth1\n',
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000003000000000000000000000001 00000400 00000001 00000000 00000003     eth1\n',
    );
    expect(await attacher().attach(TARGET)).toMatchObject({ changed: false, spawns: 0 });
    expect(commands).toEqual([]);
  });

  it("carries pipework's own complaint in the AttachError", async () => {
    writeNetns('4242', ['lo']);
    const error = await attacher({ exit: 1 }).attach(TARGET).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AttachError);
    expect((error as Error).message).toContain('attach dev-0123456789ab: pipework:');
    expect((error as Error).message).toContain('exit 1: Could not locate cgroup mount point.');
  });

  it("removes the ip-netns link a failed pipework leaves (PID → /proc/PID/ns/net), and no other", async () => {
    writeNetns('4242', ['lo']);
    mkdirSync(join(dir, 'netns'));
    symlinkSync('/proc/4242/ns/net', join(dir, 'netns', '4242'));
    symlinkSync('/proc/1/ns/net', join(dir, 'netns', '1'));
    await expect(attacher({ exit: 1 }).attach(TARGET)).rejects.toBeInstanceOf(AttachError);
    expect(readdirSync(join(dir, 'netns'))).toEqual(['1']);
  });

  it('refuses DHCP addressing, which needs the native backend', async () => {
    writeNetns('4242', ['lo']);
    const a = attacher();
    expect(a.dhcp).toBe(false);
    await expect(a.attach({ ...TARGET, address: DHCP_ADDRESS })).rejects.toThrow('DHCP addressing needs [network] attach = native');
    expect(commands).toEqual([]);
  });

  it('preflight: a pipework that runs (usage, exit 1) passes; a missing one fails naming the path', async () => {
    const a = attacher({ exit: 1 });
    await expect(a.preflight()).resolves.toBeUndefined();
    const missing = new PipeworkAttacher({ pipework: join(dir, 'nope'), bridge: 'br-ctr', procRoot: proc });
    await expect(missing.preflight()).rejects.toThrow(`${join(dir, 'nope')}: not usable (attach = pipework, [network] pipework):`);
  });

  it('preflight: no sysctl (procps) for the DAD step fails at start, naming the package', async () => {
    attacher({ exit: 1 });
    const noSysctl = new PipeworkAttacher({ pipework: standIn, bridge: 'br-ctr', procRoot: proc, tools: { ip: 'ip', nsenter: 'nsenter', sysctl: join(dir, 'no-sysctl') } });
    await expect(noSysctl.preflight()).rejects.toThrow(`${join(dir, 'no-sysctl')}: not usable (DAD off in the container before pipework; Debian package procps):`);
  });
});

describe("libexec/pipework-path/busybox: first on pipework's PATH", () => {
  const shim = join(PIPEWORK_PATH_DIR, 'busybox');

  it('answers ipcalc -b for an IPv6 address with a broadcast the kernel ignores (busybox itself fails on it)', async () => {
    const out = await runCommand({ file: shim, args: ['ipcalc', '-b', 'fd00:3::100/64'] });
    expect(out.stdout).toBe('BROADCAST=::\n');
  });

  it('passes anything else on to the next busybox on PATH', async () => {
    const next = join(dir, 'bin');
    mkdirSync(next);
    writeFileSync(join(next, 'busybox'), '#!/bin/sh\necho "real busybox: $*"\n');
    chmodSync(join(next, 'busybox'), 0o755);
    const env = { PATH: `${PIPEWORK_PATH_DIR}:${next}:/usr/bin:/bin` };
    expect((await runCommand({ file: shim, args: ['ipcalc', '-b', '10.0.0.1/24'], env })).stdout).toBe('real busybox: ipcalc -b 10.0.0.1/24\n');
    expect((await runCommand({ file: shim, args: ['sh', '-c', 'true'], env })).stdout).toBe('real busybox: sh -c true\n');
  });
});
