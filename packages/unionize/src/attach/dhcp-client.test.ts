import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DhcpClients, SHIPPED_DHCLIENT_SCRIPT } from './dhcp-client.js';
import type { Command, CommandOutput } from './run-command.js';

/** A fake /proc: processes with a stat line and a network namespace; a fake dhclient that writes its pid file. */

const CONTAINER = { name: 'dev-0123456789ab', pid: 4242, mac: '02:11:22:33:44:55', ifname: 'eth1' };

let dir: string;
let proc: string;
let stateDir: string;
let commands: Command[];
let kills: Array<[number, string]>;
let nextPid: number;

function fakeProcess(pid: number, comm: string, netns: string, startTime = '777', state = 'S'): void {
  mkdirSync(join(proc, String(pid), 'ns'), { recursive: true });
  const fields = [state, ...Array.from({ length: 18 }, () => '0'), startTime, '0'];
  writeFileSync(join(proc, String(pid), 'stat'), `${pid} (${comm}) ${fields.join(' ')}\n`);
  // readlink gives `net:[N]`; opening it works because the link resolves to a file of that name beside it.
  writeFileSync(join(proc, String(pid), 'ns', netns), '');
  rmSync(join(proc, String(pid), 'ns', 'net'), { force: true });
  symlinkSync(netns, join(proc, String(pid), 'ns', 'net'));
}

function clients(release = true): DhcpClients {
  return new DhcpClients({
    stateDir,
    release,
    procRoot: proc,
    kill: (pid, signal) => {
      kills.push([pid, signal]);
      fakeProcess(pid, 'dhclient', 'net:[gone]', '1', 'Z');
    },
    run: async (command): Promise<CommandOutput> => {
      commands.push(command);
      if (command.args.includes('-nw')) {
        // dhclient -nw: the daemon joins the namespace nsenter entered and writes its pid file.
        const pid = nextPid++;
        const target = Number(command.args[command.args.indexOf('-t') + 1]);
        const netns = readFileSync(join(proc, String(target), 'stat'), 'utf8') && `net:[${target}]`;
        fakeProcess(pid, 'dhclient', netns);
        writeFileSync(command.args[command.args.indexOf('-pf') + 1]!, `${pid}\n`);
      }
      return { stdout: '', stderr: '' };
    },
  });
}

const files = (name = CONTAINER.name) => join(stateDir, name);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ua-dhcp-'));
  proc = join(dir, 'proc');
  stateDir = join(dir, 'state');
  commands = [];
  kills = [];
  nextPid = 9000;
  fakeProcess(CONTAINER.pid, 'sleep', `net:[${CONTAINER.pid}]`);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('DhcpClients', () => {
  it('starts dhclient -6 in the container namespace with DUID-LL, its own files and the shipped script', async () => {
    const c = clients();
    expect(await c.state(CONTAINER)).toBe('none');
    expect(await c.start(CONTAINER)).toEqual({ pid: 9000, started: true });
    const d = files();
    expect(commands).toEqual([
      {
        file: 'nsenter',
        args: ['-t', '4242', '-n', 'dhclient', '-6', '-nw', '-D', 'LL', '-cf', `${d}/dhclient.conf`, '-lf', `${d}/dhclient6.leases`,
          '-pf', `${d}/dhclient.pid`, '-sf', SHIPPED_DHCLIENT_SCRIPT, 'eth1'],
        logFile: `${d}/dhclient.log`,
      },
    ]);
    expect(readFileSync(`${d}/dhclient.conf`, 'utf8')).toContain('send fqdn.fqdn "dev-0123456789ab";');
    expect(readFileSync(`${d}/dhclient.conf`, 'utf8')).toContain('send dhcp6.rapid-commit;');
    expect(JSON.parse(readFileSync(`${d}/target.json`, 'utf8'))).toEqual({ ...CONTAINER, startTime: '777' });
    expect(await c.state(CONTAINER)).toBe('running');
    expect(existsSync(SHIPPED_DHCLIENT_SCRIPT)).toBe(true);
  });

  it('sends no FQDN for a name that is not a hostname', async () => {
    await clients().start({ ...CONTAINER, name: 'dev_under.score' });
    expect(readFileSync(`${files('dev_under.score')}/dhclient.conf`, 'utf8')).not.toContain('fqdn');
  });

  it('is idempotent: a running client is left alone', async () => {
    const c = clients();
    await c.start(CONTAINER);
    commands = [];
    expect(await c.start(CONTAINER)).toEqual({ pid: 9000, started: false });
    expect(commands).toEqual([]);
  });

  it('replaces the client of an earlier container of the name (another namespace) without a Release', async () => {
    const c = clients();
    await c.start(CONTAINER);
    // The container restarted: new init, new namespace; the old client still holds the old one.
    const restarted = { ...CONTAINER, pid: 4343 };
    fakeProcess(4343, 'sleep', 'net:[4343]', '888');
    expect(await c.state(restarted)).toBe('stale');
    commands = [];
    expect(await c.start(restarted)).toEqual({ pid: 9001, started: true });
    expect(kills).toEqual([[9000, 'SIGKILL']]);
    expect(commands.map((x) => x.args.includes('-r'))).toEqual([false]);
  });

  it('stops for good: SIGKILL (the lease file stays intact), then a Release from the held namespace, then the state is gone', async () => {
    const c = clients();
    await c.start(CONTAINER);
    commands = [];
    await c.stop(CONTAINER.name);
    expect(kills).toEqual([[9000, 'SIGKILL']]);
    expect(commands).toHaveLength(1);
    expect(commands[0]).toMatchObject({ file: 'nsenter', args: expect.arrayContaining(['--net=/proc/self/fd/3', '-r', '-D', 'LL', 'eth1']) });
    expect(commands[0]?.extraFds).toHaveLength(1);
    expect(existsSync(files())).toBe(false);
  });

  it('stops without a Release when configured so, and does nothing when there is no client', async () => {
    const c = clients(false);
    await c.start(CONTAINER);
    commands = [];
    await c.stop(CONTAINER.name);
    expect(commands).toEqual([]);
    await c.stop('never-started');
    expect(kills).toHaveLength(1);
  });

  it('reaps clients whose container init is gone or was replaced (same PID, other start time), keeps the rest', async () => {
    const c = clients();
    await c.start(CONTAINER);
    await c.start({ ...CONTAINER, name: 'dev-aaaaaaaaaaaa', pid: 5000 }).catch(() => undefined); // no such process: refused
    fakeProcess(5001, 'sleep', 'net:[5001]');
    await c.start({ ...CONTAINER, name: 'dev-bbbbbbbbbbbb', pid: 5001 });
    expect(await c.reap()).toEqual([]);
    fakeProcess(5001, 'sleep', 'net:[5001]', '999'); // PID reused by another process
    expect(await c.reap()).toEqual(['dev-bbbbbbbbbbbb']);
    expect(existsSync(files('dev-bbbbbbbbbbbb'))).toBe(false);
    expect(existsSync(files())).toBe(true);
  });

  it('refuses a name that would leave the state directory', async () => {
    await expect(clients().start({ ...CONTAINER, name: '../etc' })).rejects.toThrow('bad container name');
  });
});
