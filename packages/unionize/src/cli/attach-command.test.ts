import { describe, expect, it } from 'vitest';
import type { AttachResult, AttachTarget, Attacher } from '../attach/native.js';
import type { AttachArgs } from './attach-args.js';
import { EngineLookup, defaultMac, dockerSocketFor, runAttachCommand, type AttachCommandDeps, type RunningContainer } from './attach-command.js';
import { DHCP_ADDRESS, isDhcpAddress } from '@unionize/protocol';

/** The command's flow with a fake Docker and a fake backend; the real ones run in attach-command.integration.test.ts. */

const WEB1: RunningContainer = { id: 'f00dfeed'.repeat(8), name: 'web1', pid: 4242 };

function harness(options: { container?: RunningContainer | null; restartTo?: number; lease?: string | null; fail?: Error } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const attaches: AttachTarget[] = [];
  const argsSeen: AttachArgs[] = [];
  let inspections = 0;
  const deps: AttachCommandDeps = {
    lookup: (args) => {
      argsSeen.push(args);
      return {
        async inspect(ref) {
          inspections++;
          const c = options.container === undefined ? WEB1 : options.container;
          if (!c || (ref !== c.name && ref !== c.id)) return null;
          return inspections > 1 && options.restartTo !== undefined ? { ...c, pid: options.restartTo } : c;
        },
      };
    },
    attacher: () =>
      ({
        async isAttached() {
          return false;
        },
        async addressOf() {
          return null;
        },
        async attach(target: AttachTarget): Promise<AttachResult> {
          attaches.push(target);
          if (options.fail) throw options.fail;
          return { changed: true, spawns: 2, ms: 1, address: isDhcpAddress(target.address) ? (options.lease ?? null) : target.address };
        },
        async detach() {},
      }) satisfies Attacher,
    stdout: (line) => out.push(line),
    stderr: (line) => err.push(line),
  };
  return { deps, out, err, attaches, argsSeen };
}

describe('unionize attach', () => {
  it('attaches a container by name, quietly, with the PID Docker gives', async () => {
    const h = harness();
    expect(await runAttachCommand(['br1', 'web1', 'fd00:3::10/64@fd00:3::1', '02:00:00:00:00:01'], h.deps)).toBe(0);
    expect(h.attaches).toEqual([{ name: 'web1', pid: 4242, mac: '02:00:00:00:00:01', address: 'fd00:3::10/64', ifname: 'eth1' }]);
    expect(h.argsSeen[0]).toMatchObject({ bridge: 'br1', gateway: 'fd00:3::1' });
    expect([h.out, h.err]).toEqual([[], []]);
  });

  it('takes an id, -i and -l, and makes a stable MAC from the name when none is given', async () => {
    const h = harness();
    expect(await runAttachCommand(['br1', '-i', 'eth2', '-l', 'hostapp1', WEB1.id, 'dhcp'], h.deps)).toBe(0);
    expect(h.attaches[0]).toEqual({ name: 'web1', pid: 4242, mac: defaultMac('web1'), address: DHCP_ADDRESS, ifname: 'eth2', hostVeth: 'hostapp1' });
    expect(defaultMac('web1')).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(defaultMac('web1')).toBe(defaultMac('web1'));
    expect(defaultMac('web2')).not.toBe(defaultMac('web1'));
  });

  it('says so when the lease has not come yet, and still succeeds', async () => {
    const h = harness({ lease: null });
    expect(await runAttachCommand(['br1', 'web1', 'dhcp', '--lease-wait-ms', '50'], h.deps)).toBe(0);
    expect(h.err).toEqual(['unionize attach: web1: no DHCPv6 lease on eth1 after 50 ms; the client keeps trying (state in /run/unionize/dhcp/web1)']);
  });

  it.each([
    ['an unknown container', { container: null }, 'unionize attach: container web1: not found'],
    ['a stopped container', { container: { ...WEB1, pid: 0 } }, 'unionize attach: container web1: not running'],
    ['a restart during attach', { restartTo: 4343 }, 'unionize attach: container web1: restarted or stopped during attach; run again'],
    ['a failing attach', { fail: new Error('attach web1: host veth: exit 2: RTNETLINK answers: File exists') }, 'RTNETLINK answers: File exists'],
  ])('fails with one line and status 1 on %s', async (_what, options, expected) => {
    const h = harness(options);
    expect(await runAttachCommand(['br1', 'web1', 'fd00:3::10/64'], h.deps)).toBe(1);
    expect(h.err).toHaveLength(1);
    expect(h.err[0]).toContain(expected);
  });

  it('answers a usage error with the reason and the usage, status 2; --help with the usage, status 0', async () => {
    const h = harness();
    expect(await runAttachCommand(['br1', 'web1', '192.168.1.2/24'], h.deps)).toBe(2);
    expect(h.err[0]).toMatch(/^unionize attach: 192\.168\.1\.2\/24: IPv4 is not supported; unionize attach is IPv6 only\nusage: unionize attach/);
    expect(h.attaches).toEqual([]);
    expect(await runAttachCommand(['--help'], h.deps)).toBe(0);
    expect(h.out[0]).toMatch(/^usage: unionize attach/);
  });
});

describe('dockerSocketFor and EngineLookup', () => {
  it('takes --docker-socket, else a unix:// DOCKER_HOST, else /var/run/docker.sock; refuses other DOCKER_HOST forms', () => {
    expect(dockerSocketFor('/run/x.sock', { DOCKER_HOST: 'unix:///run/y.sock' })).toBe('/run/x.sock');
    expect(dockerSocketFor(undefined, { DOCKER_HOST: 'unix:///run/y.sock' })).toBe('/run/y.sock');
    expect(dockerSocketFor(undefined, {})).toBe('/var/run/docker.sock');
    expect(() => dockerSocketFor(undefined, { DOCKER_HOST: 'tcp://10.0.0.1:2376' })).toThrow(/unix socket only .*--docker-socket/);
    expect(() => dockerSocketFor(undefined, { DOCKER_HOST: 'unix://' })).toThrow(/unix socket only/);
  });

  it('answers with the id, the name and the PID Docker gives, null for an unknown container', async () => {
    const lookup = new EngineLookup({
      inspect: async (ref: string) => (ref === 'web1' || ref === 'f00d' ? { id: 'f00dfeed', name: 'web1', image: 'i', state: 'running', pid: 4242, labels: {}, createdAt: 't' } : null),
    });
    expect(await lookup.inspect('f00d')).toEqual({ id: 'f00dfeed', name: 'web1', pid: 4242 });
    expect(await lookup.inspect('nope')).toBeNull();
  });
});
