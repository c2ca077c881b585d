import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AttachError } from '../errors.js';
import type { DhcpClients, DhcpTarget } from './dhcp-client.js';
import { NativeAttacher } from './native.js';
import { hostVethName } from './plan.js';
import { CommandError, type Command, type CommandOutput } from './run-command.js';
import { DHCP_ADDRESS } from '@unionize/protocol';

const TARGET = { name: 'dev-0123456789ab', pid: 4242, mac: '02:11:22:33:44:55', address: 'fd00:3::100/64' };
const VETH = hostVethName(TARGET.name);
const DEV_HEADER = 'Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n';

let proc: string;
let commands: Command[];
let failures: Map<number, CommandError>;

/** A fake /proc with our namespace (`self`) and the container's (`4242`). */
function writeNetns(who: string, links: string[], inet6 = '', routes = ''): void {
  const dir = join(proc, who, 'net');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'dev'), DEV_HEADER + links.map((l) => `  ${l}: 0 0\n`).join(''));
  writeFileSync(join(dir, 'if_inet6'), inet6);
  writeFileSync(join(dir, 'ipv6_route'), routes);
}

const ATTACHED_INET6 = 'fd000003000000000000000000000100 02 40 00 82     eth1\n';
const ATTACHED_ROUTE =
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000003000000000000000000000001 00000400 00000001 00000000 00000003     eth1\n';

function attacher(stdout = ''): NativeAttacher {
  return new NativeAttacher({
    bridge: 'br-ctr',
    gateway: 'fd00:3::1',
    procRoot: proc,
    run: async (command): Promise<CommandOutput> => {
      commands.push(command);
      const failure = failures.get(commands.length);
      if (failure) throw failure;
      return { stdout, stderr: '' };
    },
  });
}

beforeEach(() => {
  proc = mkdtempSync(join(tmpdir(), 'ua-proc-'));
  commands = [];
  failures = new Map();
  writeNetns('self', ['lo', 'eth0', 'br-ctr']);
});
afterEach(() => rmSync(proc, { recursive: true, force: true }));

describe('NativeAttacher', () => {
  it('attaches a fresh container with two spawns, then announces it to its gateway without waiting', async () => {
    writeNetns('4242', ['lo']);
    const result = await attacher().attach(TARGET);
    expect(result).toMatchObject({ changed: true, spawns: 2 });
    expect(commands.map((c) => c.file)).toEqual(['ip', 'nsenter', 'nsenter']);
    expect(commands[0]?.input).toContain('peer name eth1 address 02:11:22:33:44:55 netns 4242');
    expect(commands[2]?.args).toEqual(['-t', '4242', '-n', 'ping', '-6', '-n', '-q', '-c', '1', '-W', '1', '-I', 'eth1', expect.any(String)]);
  });

  it('runs nothing when eth1 already has the address and route', async () => {
    writeNetns('4242', ['lo', 'eth1'], ATTACHED_INET6, ATTACHED_ROUTE);
    const a = attacher();
    expect(await a.isAttached(TARGET)).toBe(true);
    expect(await a.attach(TARGET)).toMatchObject({ changed: false, spawns: 0 });
    expect(commands).toEqual([]);
  });

  it('reports not attached, never throws, when the process is gone', async () => {
    expect(await attacher().isAttached(TARGET)).toBe(false);
  });

  it('fails clearly when the container process is gone', async () => {
    await expect(attacher().attach(TARGET)).rejects.toThrow(`attach ${TARGET.name}: container process 4242 is gone`);
  });

  it('carries stderr and quotes the failing batch line', async () => {
    writeNetns('4242', ['lo']);
    const stderr = 'Error: either "dev" is duplicate, or "master" is a garbage.\nCommand failed -:2\n';
    failures.set(1, new CommandError({ file: 'ip', args: [] }, 1, stderr, `ip -batch -: exit 1: ${stderr}`));
    const error = await attacher().attach(TARGET).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AttachError);
    expect((error as AttachError).message).toContain('host veth: ip -batch -: exit 1: Error: either');
    expect((error as AttachError).message).toContain(`(in "link set ${VETH} master br-ctr up")`);
  });

  it('goes on when a stale veth vanished before it could delete it', async () => {
    writeNetns('self', ['lo', 'br-ctr', VETH]);
    writeNetns('4242', ['lo']);
    const stderr = `Cannot find device "${VETH}"\n`;
    failures.set(1, new CommandError({ file: 'ip', args: [] }, 1, stderr, stderr));
    expect(await attacher().attach(TARGET)).toMatchObject({ changed: true, spawns: 3 });
  });

  it('detaches only what is there', async () => {
    await attacher().detach(TARGET.name);
    expect(commands).toEqual([]);
    writeNetns('self', ['lo', VETH]);
    await attacher().detach(TARGET.name);
    expect(commands).toEqual([{ file: 'ip', args: ['link', 'del', VETH] }]);
  });

  it('preflight accepts a bridge and refuses anything else', async () => {
    await expect(attacher('[{"ifname":"br-ctr","linkinfo":{"info_kind":"bridge"}}]').preflight()).resolves.toBeUndefined();
    await expect(attacher('[{"ifname":"br-ctr","linkinfo":{"info_kind":"veth"}}]').preflight()).rejects.toThrow(
      'bridge br-ctr: exists but is not a bridge',
    );
    commands = [];
    failures.set(1, new CommandError({ file: 'ip', args: [] }, 1, '', 'ip: Device "br-ctr" does not exist.'));
    await expect(attacher('[]').preflight()).rejects.toThrow('bridge br-ctr: not usable: ip: Device "br-ctr" does not exist.');
  });

  it('preflight checks that nsenter and, with a gateway to announce to, ping start: a missing one stops it, naming the package', async () => {
    const bridge = '[{"ifname":"br-ctr","linkinfo":{"info_kind":"bridge"}}]';
    await attacher(bridge).preflight();
    expect(commands.map((c) => `${c.file} ${c.args.join(' ')}`)).toEqual(['ip -d -j link show dev br-ctr', 'nsenter --version', 'ping -V']);
    commands = [];
    failures.set(3, new CommandError({ file: 'ping', args: ['-V'] }, null, '', 'spawn ping ENOENT'));
    await expect(attacher(bridge).preflight()).rejects.toThrow('ping: not usable (the announce after attaching; Debian package iputils-ping): spawn ping ENOENT');
    // Any exit code means it ran.
    commands = [];
    failures = new Map([[3, new CommandError({ file: 'ping', args: ['-V'] }, 2, '', 'exit 2')]]);
    await expect(attacher(bridge).preflight()).resolves.toBeUndefined();
  });
});

describe('NativeAttacher, DHCP mode', () => {
  const DHCP = { ...TARGET, address: DHCP_ADDRESS };
  const LEASED = 'fd000003000000000000000000001b0a 02 80 00 82     eth1\n';
  const UP = 'fe80000000000000001122fffe334455 02 40 20 80     eth1\n';
  const RA_ROUTE =
    '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe8000000000000000aafffffe000001 00000400 00000001 00000000 00450003     eth1\n';

  /** The client manager as the attacher sees it; `lease` is what the "server" puts on eth1. */
  function fakeClients(lease: string | null, route = RA_ROUTE) {
    const calls: string[] = [];
    let running = false;
    const clients = {
      async state() {
        return running ? 'running' : 'none';
      },
      async start(target: DhcpTarget) {
        calls.push(`start ${target.name} ${target.pid} ${target.mac} ${target.ifname}`);
        const started = !running;
        running = true;
        if (lease) writeNetns('4242', ['lo', 'eth1'], UP + lease, route);
        return { pid: 9000, started };
      },
      async stop(name: string) {
        calls.push(`stop ${name}`);
        running = false;
      },
    };
    return { calls, clients: clients as unknown as DhcpClients };
  }

  function dhcpAttacher(clients: DhcpClients | undefined, leaseWaitMs = 1000): NativeAttacher {
    return new NativeAttacher({
      bridge: 'br-ctr',
      gateway: 'fd00:3::1',
      procRoot: proc,
      leaseWaitMs,
      ...(clients ? { dhcp: clients } : {}),
      run: async (command): Promise<CommandOutput> => {
        commands.push(command);
        // `ip link set eth1 up` gives eth1 its link-local address.
        if (command.args.includes('up') && command.file === 'nsenter') writeNetns('4242', ['lo', 'eth1'], UP);
        return { stdout: '', stderr: '' };
      },
    });
  }

  it('plumbs eth1 without an address, starts the client and returns the lease once eth1 holds it', async () => {
    writeNetns('4242', ['lo']);
    const { calls, clients } = fakeClients(LEASED);
    const a = dhcpAttacher(clients);
    expect(a.dhcp).toBe(true);
    const result = await a.attach(DHCP);
    expect(result).toMatchObject({ changed: true, spawns: 4, address: 'fd00:3::1b0a/128' });
    expect(commands.map((c) => c.args.includes('sysctl') || c.args.includes('up') || c.file)).toEqual(['ip', true, true]);
    expect(calls).toEqual(['start dev-0123456789ab 4242 02:11:22:33:44:55 eth1']);
    writeNetns('self', ['lo', 'br-ctr', VETH]);
    expect(await a.isAttached(DHCP)).toBe(true);
    expect(await a.addressOf(DHCP)).toBe('fd00:3::1b0a/128');
    commands = [];
    expect(await a.attach(DHCP)).toMatchObject({ changed: false, spawns: 0, address: 'fd00:3::1b0a/128' });
    expect(commands).toEqual([]);
  });

  it('waits for the RA default route too, and returns the address alone at the deadline', async () => {
    writeNetns('4242', ['lo']);
    const started = performance.now();
    const result = await dhcpAttacher(fakeClients(LEASED, '').clients, 100).attach(DHCP);
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    expect(result.address).toBe('fd00:3::1b0a/128');
  });

  it('returns address null when the lease has not come within the wait; the client keeps trying', async () => {
    writeNetns('4242', ['lo']);
    const result = await dhcpAttacher(fakeClients(null).clients, 50).attach(DHCP);
    expect(result.address).toBeNull();
    expect(await dhcpAttacher(fakeClients(null).clients).addressOf(DHCP)).toBeNull();
  });

  it('is not attached while the client does not run', async () => {
    writeNetns('4242', ['lo', 'eth1'], UP + LEASED);
    expect(await dhcpAttacher(fakeClients(null).clients).isAttached(DHCP)).toBe(false);
  });

  it('fails clearly when DHCP is not configured', async () => {
    writeNetns('4242', ['lo']);
    const a = dhcpAttacher(undefined);
    expect(a.dhcp).toBe(false);
    await expect(a.attach(DHCP)).rejects.toThrow('DHCP addressing is not configured');
  });

  it('stops the client (it holds the namespace) before dropping the host end', async () => {
    writeNetns('self', ['lo', VETH]);
    const { calls, clients } = fakeClients(null);
    await dhcpAttacher(clients).detach(TARGET.name);
    expect(calls).toEqual([`stop ${TARGET.name}`]);
    expect(commands).toEqual([{ file: 'ip', args: ['link', 'del', VETH] }]);
  });
});
