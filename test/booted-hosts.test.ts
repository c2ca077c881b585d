import { randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MACHINE_ROOT, freshRoot } from './lab/debian-root.js';
import { bootMachine, waitBooted, type Machine } from './lab/machine.js';
import { addressesOf, buildCore, namesOf, randomPrefix, type LabAddresses, type LabNames } from './lab/netns.js';
import { findTool } from './lab/prereqs.js';
import { labEnv, run, waitFor } from './lab/process.js';
import { repoRoot } from './lab/repo.js';
import { LabState } from './lab/state.js';
import { Teardown } from './lab/teardown.js';

/**
 * Issue 17, point 3: the Debian packages on two machines booted by their own
 * systemd (systemd-nspawn -b) from a cached debootstrapped Debian 12 root
 * (test/lab/debian-root.ts MACHINE_ROOT, under /var/tmp/unionize-lab/roots/),
 * each in a network namespace of the lab's topology (netns.ts buildCore: the
 * orchestrator host with the device bridge, the docker host with the
 * container bridge, a transit link between them). Installed offline with
 * `apt-get install ./x.deb` with no network: the root holds every Depends
 * and Recommends.
 */

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (debootstrap, systemd-nspawn, namespaces)';
  for (const [tool, pkg] of [['debootstrap', 'debootstrap'], ['systemd-nspawn', 'systemd-container'], ['nsenter', 'util-linux'], ['ip', 'iproute2'], ['dpkg-deb', 'dpkg']] as const) {
    if (!findTool(tool)) return `needs ${tool} (Debian package ${pkg})`;
  }
  return null;
}

const reason = skipReason();
if (reason && process.env.CI === 'true') throw new Error(`CI=true and the booted-hosts test cannot run: ${reason}`);
if (reason) console.warn(`e2e skipped: ${reason}`);

const log = (line: string) => console.log(`booted-hosts: ${line}`);

describe.skipIf(reason)(`the packages on two booted machines${reason ? ` (skipped: ${reason})` : ''}`, () => {
  const teardown = new Teardown();
  const debs = { orchestrator: '', agent: '' };
  let orch: Machine;
  let dock: Machine;
  let addr: LabAddresses;
  let names: LabNames;

  beforeAll(async () => {
    const work = mkdtempSync(join(tmpdir(), 'unionize-booted-'));
    teardown.add(`folder ${work}`, () => rmSync(work, { recursive: true, force: true }));
    const built = await run(['bash', join(repoRoot(), 'scripts', 'package.sh'), '--out', join(work, 'debs'), '--no-build'], {
      timeoutMs: 900_000,
      env: labEnv({ TMPDIR: work }),
    });
    expect(built.code, built.stderr).toBe(0);
    for (const file of readdirSync(join(work, 'debs'))) {
      if (/^unionize-orchestrator_.*_amd64\.deb$/.test(file)) debs.orchestrator = join(work, 'debs', file);
      if (/^unionize-agent_.*_amd64\.deb$/.test(file)) debs.agent = join(work, 'debs', file);
    }

    const started = Date.now();
    const roots = [await freshRoot(log, MACHINE_ROOT), await freshRoot(log, MACHINE_ROOT)];
    for (const made of roots) teardown.add(`root ${made.root}`, made.remove);
    log(`two machine roots copied in ${Math.round((Date.now() - started) / 1000)} s`);

    names = namesOf(`bh${randomBytes(2).toString('hex')}`, 0);
    addr = addressesOf(randomPrefix());
    const state = new LabState(names.lab, work, false);
    teardown.add('lab state', () => state.discard());
    await buildCore({ names, addr, log, teardown, state });

    const booting = Date.now();
    const [orchRoot, dockRoot] = roots.map((r) => r.root) as [string, string];
    orch = await bootMachine({ name: 'orch', root: orchRoot, netns: names.orch, logFile: join(work, 'orch.log') });
    teardown.add('machine orch', () => orch.stop());
    dock = await bootMachine({ name: 'dock1', root: dockRoot, netns: names.dock, logFile: join(work, 'dock1.log'), docker: true });
    teardown.add('machine dock1', () => dock.stop());
    for (const machine of [orch, dock]) {
      const { state: s, failed } = await waitBooted(machine);
      log(`${machine.name}: ${s}${failed ? ` (failed: ${failed})` : ''}`);
    }
    log(`both machines booted in ${Math.round((Date.now() - booting) / 1000)} s`);
  }, 1_800_000);

  afterAll(async () => {
    const errors = await teardown.run(log);
    expect(errors).toEqual([]);
  }, 300_000);

  /** Copy a package into the machine and install it the way the README says, offline. */
  async function install(machine: Machine, deb: string): Promise<void> {
    copyFileSync(deb, join(machine.root, 'root', basename(deb)));
    const result = await machine.exec(['sh', '-c', `cd /root && apt-get install -y ./${basename(deb)}`], { timeoutMs: 300_000 });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
  }

  it('installs each package offline with apt-get; the daemons are enabled, not started; dockerd runs in the docker host', { timeout: 600_000 }, async () => {
    await install(orch, debs.orchestrator);
    await install(dock, debs.agent);
    for (const [machine, unit] of [[orch, 'orchestrator'], [orch, 'orchestrator-hook-flush'], [dock, 'unionize']] as const) {
      expect((await machine.exec(['systemctl', 'is-enabled', unit])).stdout.trim(), unit).toBe('enabled');
      expect((await machine.exec(['systemctl', 'is-active', unit])).stdout.trim(), unit).not.toBe('active');
    }
    const docker = await dock.exec(['docker', 'info', '--format', '{{.ServerVersion}} {{.CgroupVersion}}']);
    expect(docker.code, docker.stderr).toBe(0);
    log(`dockerd in dock1: ${docker.stdout.trim()}`);
  });

  /** A shell script run as root in a machine; fails the test with its output unless it exits 0. */
  async function sh(machine: Machine, script: string): Promise<string> {
    const result = await machine.exec(['sh', '-euc', script], { timeoutMs: 120_000 });
    expect(result.code, `${machine.name}: ${script}\n${result.stdout}\n${result.stderr}`).toBe(0);
    return result.stdout;
  }

  async function active(machine: Machine, unit: string): Promise<string> {
    return waitFor(`${unit} active in ${machine.name}`, async () => {
      const state = (await machine.exec(['systemctl', 'is-active', unit])).stdout.trim();
      if (state === 'failed') throw new Error(`${unit} failed: ${(await machine.exec(['journalctl', '-u', unit, '--no-pager', '-n', '20'])).stdout}`);
      return state === 'active' ? state : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
  }

  it('configured as the guide says (init, keys and certificates copied, INI files edited), both daemons start under systemd and the orchestrator reaches the agent', { timeout: 600_000 }, async () => {
    await sh(orch, `orchestratorctl init --dir /etc/unionize/pki --orchestrator-san ${addr.orchTransit} --unionize-san ${addr.dockTransit} --agent dock1
chown -R orchestrator: /etc/unionize/pki`);
    // The guide's scp from the orchestrator host to the docker host.
    const pki = join(orch.root, 'etc/unionize/pki');
    mkdirSync(join(dock.root, 'etc/unionize/pki'), { recursive: true, mode: 0o700 });
    for (const file of ['metrics-token', 'unionize.crt', 'unionize.key']) cpSync(join(pki, file), join(dock.root, 'etc/unionize/pki', file));
    cpSync(join(pki, 'keys/agent-dock1.keys'), join(dock.root, 'etc/unionize/orchestrator.keys'));
    await sh(dock, 'chown -R root:root /etc/unionize/pki /etc/unionize/orchestrator.keys');

    await sh(orch, `sed -i -e 's|/etc/orchestrator/tls/|/etc/unionize/pki/|' -e 's|/etc/orchestrator/keys|/etc/unionize/pki/keys|' \
  -e 's|fd00:3::/64|${addr.containerSubnet}|' -e 's|https://\\[fd00:2::2\\]:9443|https://[${addr.dockTransit}]:9443|' \
  /etc/orchestrator/orchestrator.ini /etc/orchestrator/hook.ini
systemctl start orchestrator`);
    await sh(dock, `sed -i -e 's|/etc/unionize/tls/|/etc/unionize/pki/|' -e 's|^bridge = br-ctr|bridge = ${names.containerBridge}|' \
  -e 's|^gateway = fd00:3::1|gateway = ${addr.dockBridge}|' /etc/unionize/unionize.ini
systemctl start unionize`);
    await active(orch, 'orchestrator');
    await active(dock, 'unionize');
    let last = '';
    const agents = await waitFor('dock1 healthy in orchestratorctl agents', async () => {
      const result = await orch.exec(['orchestratorctl', 'agents']);
      last = `${result.stdout}${result.stderr}`;
      return /^dock1\s+healthy/m.test(result.stdout) ? result.stdout : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1000 }).catch(async (error: Error) => {
      const journal = (await orch.exec(['journalctl', '-u', 'orchestrator', '--no-pager', '-n', '15'])).stdout;
      const agentJournal = (await dock.exec(['journalctl', '-u', 'unionize', '--no-pager', '-n', '15'])).stdout;
      throw new Error(`${error.message}\nlast: ${last}\norchestrator:\n${journal}\nunionize:\n${agentJournal}`);
    });
    log(`orchestratorctl agents: ${agents.trim()}`);
  });
});
