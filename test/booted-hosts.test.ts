import { randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MACHINE_ROOT, freshRoot } from './lab/debian-root.js';
import { bootMachine, waitBooted, type Machine } from './lab/machine.js';
import { addDevice, addressesOf, buildCore, deviceUp, inNs, namesOf, randomMac, randomPrefix, type LabAddresses, type LabNames } from './lab/netns.js';
import { findTool } from './lab/prereqs.js';
import { labEnv, run, waitFor } from './lab/process.js';
import { repoRoot } from './lab/repo.js';
import { DeviceClient, makeDevice, type DeviceLease } from './lab/devices.js';
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

/** The last lines of a file, or why not. */
function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (error) {
    return (error as Error).message;
  }
}

/** Device namespaces on the orchestrator machine's device bridge. */
const DEVICES = 11;
/** The burst during which the orchestrator is killed (devices 2 to 11). */
const BURST = 10;
/** Where the orchestrator package puts its files (scripts/package.sh `lib`, its examples). */
const LIB = '/usr/lib/unionize';
const EXAMPLES = '/usr/share/doc/unionize-orchestrator/examples';
const AGENT_EXAMPLES = '/usr/share/doc/unionize-agent/examples';

describe.skipIf(reason)(`the packages on two booted machines${reason ? ` (skipped: ${reason})` : ''}`, () => {
  const teardown = new Teardown();
  const debs = { orchestrator: '', agent: '' };
  let orch: Machine;
  let dock: Machine;
  let addr: LabAddresses;
  let names: LabNames;
  let state: LabState;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'unionize-booted-'));
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

    names = namesOf(`bh${randomBytes(2).toString('hex')}`, DEVICES);
    addr = addressesOf(randomPrefix());
    state = new LabState(names.lab, work, false);
    teardown.add('lab state', () => state.discard());
    await buildCore({ names, addr, log, teardown, state });

    const booting = Date.now();
    const [orchRoot, dockRoot] = roots.map((r) => r.root) as [string, string];
    // dnsmasq-devnet needs CAP_NET_ADMIN, as on a real host.
    orch = await bootMachine({ name: 'orch', root: orchRoot, netns: names.orch, logFile: join(work, 'orch.log'), capabilities: ['CAP_NET_ADMIN'] });
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

  /** Each step builds on the one before: a step whose predecessor failed fails at once, naming it, instead of waiting out its own timeouts. */
  const done = new Set<string>();
  function requires(step: string): void {
    if (!done.has(step)) throw new Error(`not run: the step before ("${step}") did not pass`);
  }

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
    done.add('install');
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
    requires('install');
    await sh(orch, `orchestratorctl init --dir /etc/unionize/pki --orchestrator-san ${addr.orchTransit} --unionize-san ${addr.dockTransit} --agent dock1
chown -R orchestrator: /etc/unionize/pki`);
    // The guide's scp from the orchestrator host to the docker host.
    const pki = join(orch.root, 'etc/unionize/pki');
    mkdirSync(join(dock.root, 'etc/unionize/pki'), { recursive: true, mode: 0o700 });
    for (const file of ['metrics-token', 'unionize.crt', 'unionize.key']) cpSync(join(pki, file), join(dock.root, 'etc/unionize/pki', file));
    cpSync(join(pki, 'keys/agent-dock1.keys'), join(dock.root, 'etc/unionize/orchestrator.keys'));
    await sh(dock, 'chown -R root:root /etc/unionize/pki /etc/unionize/orchestrator.keys');

    // Step 4: each bridge unit with its arguments edited to this site's, enabled. The test's
    // topology made the bridges already (the device ports are on brdev); the units make them
    // as the guide says (fixed MAC, address, forwarding, route), changing only what differs.
    const p = addr.prefix;
    await sh(orch, `sed -e 's|--bridge br-dev|--bridge ${names.deviceBridge}|g' -e 's|fd00:1::1/64|${p}:1::1/64|' -e 's|fd00:3::/64=fd00:2::2|${p}:3::/64=${addr.dockTransit}|' \
  /usr/lib/systemd/system/device-bridge.service > /etc/systemd/system/device-bridge.service
systemctl daemon-reload && systemctl enable --now device-bridge`);
    await sh(dock, `sed -e 's|--bridge br-ctr|--bridge ${names.containerBridge}|g' -e 's|fd00:3::1/64|${p}:3::1/64|' -e 's|fd00:1::/64=fd00:2::1|${p}:1::/64=${addr.orchTransit}|' \
  /usr/lib/systemd/system/container-bridge.service > /etc/systemd/system/container-bridge.service
systemctl daemon-reload && systemctl enable --now container-bridge`);
    for (const [machine, unit, bridge] of [[orch, 'device-bridge', names.deviceBridge], [dock, 'container-bridge', names.containerBridge]] as const) {
      const journal = await sh(machine, `journalctl -u ${unit} --no-pager -o cat`);
      expect(journal, `${unit} in ${machine.name}`).toContain(`${bridge}: `);
      log(`${machine.name}: ${journal.trim().split('\n').filter((l) => l.startsWith(`${bridge}: `)).pop()}`);
    }

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
    done.add('configure');
  });

  /** `orchestratorctl --json show QUERY` in the orchestrator machine: the client, or undefined while none matches. */
  async function shown(query: string): Promise<{ state: string; stateReason: string; instance: { containerName: string; address: string } | null } | undefined> {
    const result = await orch.exec(['orchestratorctl', '--json', 'show', query]);
    if (result.code !== 0) {
      if (/no client matches/.test(result.stderr)) return undefined;
      throw new Error(`orchestratorctl show ${query}: ${result.stderr.trim()}`);
    }
    return JSON.parse(result.stdout) as { state: string; stateReason: string; instance: { containerName: string; address: string } | null };
  }

  /** The managed containers dockerd runs in the docker host's machine. */
  async function containers(): Promise<string[]> {
    const out = await sh(dock, `docker ps --all --filter label=io.unionize.managed --format '{{.Names}}'`);
    return out.split('\n').filter(Boolean).sort();
  }

  type Shown = NonNullable<Awaited<ReturnType<typeof shown>>>;

  /** Wait until the client of `duid` is ready with an addressed container; on a timeout, the journals of `units` say why. */
  async function readyClient(duid: string, what: string, units: { orch?: string[]; dock?: string[] }): Promise<Shown> {
    return waitFor(what, async () => {
      const client = await shown(duid);
      if (client?.state === 'failed') throw new Error(`client failed: ${client.stateReason}`);
      return client?.state === 'ready' && client.instance?.address ? client : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1000 }).catch(async (error: Error) => {
      const journals = [];
      for (const [machine, list] of [[orch, units.orch], [dock, units.dock]] as const) {
        if (!list?.length) continue;
        const out = (await machine.exec(['journalctl', ...list.flatMap((u) => ['-u', u]), '--no-pager', '-n', machine === orch ? '30' : '20'])).stdout;
        journals.push(`${machine.name} (${list.join(', ')}):\n${out}`);
      }
      throw new Error(`${error.message}\n${journals.join('\n')}`);
    });
  }

  /** The page a container serves, fetched from device namespace `ns` (curl), once it answers. */
  function pageFrom(ns: string, address: string, what: string, timeoutMs: number, intervalMs: number): Promise<string> {
    return waitFor(what, async () => {
      const got = await run(inNs(ns, ['curl', '-g', '-s', '--max-time', '3', `http://[${address}]/`]));
      return got.code === 0 && got.stdout.length > 0 ? got.stdout : undefined;
    }, { timeoutMs, intervalMs });
  }

  let device: DeviceClient;
  let lease: DeviceLease;

  it('a device leases from dnsmasq-devnet (set up as the guide says), its container starts in the docker host and the device reaches it; released, the container goes', { timeout: 600_000 }, async () => {
    requires('configure');
    // Step 6 on the docker host: the client image, built from its root filesystem (no registry).
    cpSync(join(repoRoot(), 'client-image'), join(dock.root, 'root/client-image'), { recursive: true });
    log(`client image: ${(await sh(dock, 'bash /root/client-image/build.sh unionize-client:latest')).trim().split('\n').pop()}`);
    // Step 5 on the orchestrator host, with the package's hook and example.
    await sh(orch, `sed -e 's|@INTERFACE@|${names.deviceBridge}|g' -e 's|@RANGE_START@|${addr.deviceRange.start}|g' -e 's|@RANGE_END@|${addr.deviceRange.end}|g' \
    -e 's|@PREFIX_LEN@|64|g' -e 's|@LEASE_TIME@|1h|g' -e 's|@HOOK@|${LIB}/dnsmasq/orchestrator-hook|g' \
    -e 's|@LEASE_FILE@|/var/lib/dnsmasq-devnet/leases|g' -e 's|@PID_FILE@|/run/dnsmasq-devnet/dnsmasq.pid|g' \
    ${EXAMPLES}/device-bridge.conf.example > /etc/dnsmasq-devnet.conf
dnsmasq --test --conf-file=/etc/dnsmasq-devnet.conf
systemctl enable --now dnsmasq-devnet orchestrator-hook-flush`);
    await active(orch, 'dnsmasq-devnet');
    await active(orch, 'orchestrator-hook-flush');

    const mac = randomMac();
    await addDevice({ names, addr, log, teardown, state }, 0, mac);
    device = new DeviceClient(makeDevice(1, names.devices[0]!, mac, work, 'booted-dev-1'), join(repoRoot(), 'test', 'lab', 'dhclient-script'), state, log);
    teardown.add('device 1', () => device.stop());
    await deviceUp(names.devices[0]!);
    lease = await device.lease(60_000).catch(async (error: Error) => {
      const journal = (await orch.exec(['journalctl', '-u', 'dnsmasq-devnet', '--no-pager', '-n', '30'])).stdout;
      throw new Error(`${error.message}\ndnsmasq-devnet:\n${journal}\ndhclient:\n${tail(join(device.device.dir, 'dhclient.log'))}`);
    });

    const ready = await readyClient(lease.duid, 'the device\'s client ready', { orch: ['orchestrator', 'orchestrator-hook-flush', 'dnsmasq-devnet'], dock: ['unionize'] });
    log(`device 1 (${lease.address}): ready, container ${ready.instance!.containerName} at ${ready.instance!.address}`);
    expect(await containers()).toEqual([ready.instance!.containerName]);

    const address = ready.instance!.address.split('/')[0]!;
    const page = await pageFrom(names.devices[0]!, address, 'the container\'s page from the device', 30_000, 500);
    expect(page).toContain(lease.duid);

    await device.release();
    await waitFor('the container gone from the docker host', async () => ((await containers()).length === 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 1000 });
    expect((await shown(lease.duid))?.state).toBe('gone');
    log('device 1 released: its client gone, no container left');
    done.add('device');
  });

  const burst: Array<{ client: DeviceClient; lease?: DeviceLease }> = [];

  /** Every burst device's client ready, one container each, all distinct, and those the only containers. */
  async function oneContainerPerLease(what: string): Promise<Map<string, string>> {
    const byDuid = await waitFor(what, async () => {
      const seen = new Map<string, string>();
      for (const { lease: l } of burst) {
        const client = await shown(l!.duid);
        if (client?.state === 'failed') throw new Error(`${l!.duid}: failed: ${client.stateReason}`);
        if (client?.state !== 'ready' || !client.instance?.address) return undefined;
        seen.set(l!.duid, `${client.instance.containerName} ${client.instance.address.split('/')[0]}`);
      }
      return seen;
    }, { timeoutMs: 240_000, intervalMs: 2000 }).catch(async (error: Error) => {
      const journal = (await orch.exec(['journalctl', '-u', 'orchestrator', '--no-pager', '-n', '30'])).stdout;
      const agentJournal = (await dock.exec(['journalctl', '-u', 'unionize', '--no-pager', '-n', '20'])).stdout;
      throw new Error(`${error.message}\norchestrator:\n${journal}\nunionize:\n${agentJournal}`);
    });
    const names = [...byDuid.values()].map((v) => v.split(' ')[0]!).sort();
    expect(new Set(names).size, 'a container for each lease').toBe(BURST);
    expect(await containers()).toEqual(names);
    return byDuid;
  }

  /** Each burst device reaches its own container's page. */
  async function burstReachesItsOwn(byDuid: Map<string, string>): Promise<void> {
    for (const [i, { lease: l }] of burst.entries()) {
      const address = byDuid.get(l!.duid)!.split(' ')[1]!;
      const page = await pageFrom(names.devices[i + 1]!, address, `device ${i + 2} reaches its container`, 60_000, 1000);
      expect(page).toContain(l!.duid);
    }
  }

  let afterBurst: Map<string, string>;

  it(`systemctl kill -s KILL orchestrator in the middle of a burst of ${BURST} devices: systemd restarts it, and each lease ends with exactly one container`, { timeout: 900_000 }, async () => {
    requires('device');
    const pid = async () => (await orch.exec(['systemctl', 'show', '--property=MainPID', '--value', 'orchestrator'])).stdout.trim();
    const before = await pid();
    for (let i = 1; i <= BURST; i++) {
      const mac = randomMac();
      await addDevice({ names, addr, log, teardown, state }, i, mac);
      const client = new DeviceClient(makeDevice(i + 1, names.devices[i]!, mac, work, `booted-dev-${i + 1}`), join(repoRoot(), 'test', 'lab', 'dhclient-script'), state, log);
      teardown.add(`device ${i + 1}`, () => client.stop());
      burst.push({ client });
    }
    for (let i = 1; i <= BURST; i++) await deviceUp(names.devices[i]!);
    const leasing = Promise.all(burst.map(async (b) => (b.lease = await b.client.lease(120_000))));
    // Mid-burst: once the orchestrator has taken the first of the burst's events.
    await waitFor('the burst\'s first client', async () => {
      for (const b of burst) if (b.lease && (await shown(b.lease.duid))) return true;
      return undefined;
    }, { timeoutMs: 120_000, intervalMs: 200 });
    await sh(orch, 'systemctl kill -s KILL orchestrator');
    log(`orchestrator (pid ${before}) killed mid-burst`);
    await leasing;
    await waitFor('systemd to restart the orchestrator', async () => {
      const now = await pid();
      return now !== '0' && now !== before && (await orch.exec(['systemctl', 'is-active', 'orchestrator'])).stdout.trim() === 'active' ? now : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    afterBurst = await oneContainerPerLease(`${BURST} clients ready after the orchestrator's restart`);
    const restarts = (await orch.exec(['systemctl', 'show', '--property=NRestarts', '--value', 'orchestrator'])).stdout.trim();
    log(`after the kill: ${BURST} clients ready, ${BURST} containers, one each (orchestrator NRestarts=${restarts})`);
    await burstReachesItsOwn(afterBurst);
    done.add('burst');
  });

  it('systemctl restart unionize loses nothing: the same containers, every client ready, every device reaching its own', { timeout: 600_000 }, async () => {
    requires('burst');
    await sh(dock, 'systemctl restart unionize');
    await active(dock, 'unionize');
    const after = await oneContainerPerLease('the clients ready after unionize\'s restart');
    expect(after).toEqual(afterBurst);
    await burstReachesItsOwn(after);
    log('unionize restarted: the same containers, all reachable');
    done.add('restart');
  });

  it('a reboot of the docker host\'s machine converges: every client ready again, one container each, every device reaching its own', { timeout: 900_000 }, async () => {
    requires('restart');
    const root = dock.root;
    await dock.stop();
    log('dock1 powered off');
    dock = await bootMachine({ name: 'dock1', root, netns: names.dock, logFile: join(work, 'dock1-reboot.log'), docker: true });
    const { state: s, failed } = await waitBooted(dock);
    log(`dock1 booted again: ${s}${failed ? ` (failed: ${failed})` : ''}`);
    await active(dock, 'unionize');
    const after = await oneContainerPerLease('the clients ready after the docker host\'s reboot');
    await burstReachesItsOwn(after);
    log(`after the reboot: ${BURST} clients ready, ${[...after.values()].filter((v, i) => v !== [...afterBurst.values()][i]).length} of them on a new container`);
    done.add('reboot');
  });

  it('with [instances] pool = 1, unionize keeps a started container under its unit\'s sandbox, and the next lease claims it', { timeout: 600_000 }, async () => {
    requires('reboot');
    // The package's orchestrator.ini has `pool = 0` in [instances].
    await sh(orch, `grep -q '^pool = 0$' /etc/orchestrator/orchestrator.ini
sed -i 's|^pool = 0$|pool = 1|' /etc/orchestrator/orchestrator.ini
systemctl restart orchestrator`);
    await active(orch, 'orchestrator');
    let last = '';
    await waitFor('the pool full in orchestratorctl agents', async () => {
      last = (await orch.exec(['orchestratorctl', 'agents'])).stdout;
      return /default 1\/1, claims 0/.test(last) ? true : undefined;
    }, { timeoutMs: 120_000, intervalMs: 1000 }).catch(async (error: Error) => {
      const journal = (await dock.exec(['journalctl', '-u', 'unionize', '--no-pager', '-n', '20'])).stdout;
      throw new Error(`${error.message}\nlast: ${last}\nunionize:\n${journal}`);
    });
    const again = await device.lease(60_000);
    const ready = await readyClient(again.duid, 'device 1 ready with a claimed container', { dock: ['unionize'] });
    const pool = await sh(dock, `docker inspect --format '{{ index .Config.Labels "io.unionize.pool" }}' ${ready.instance!.containerName}`);
    expect(pool.trim(), 'the container was a pool member').toBe('default');
    const address = ready.instance!.address.split('/')[0]!;
    const page = await pageFrom(names.devices[0]!, address, 'the claimed container\'s page from the device', 30_000, 500);
    expect(page).toContain(again.duid);
    log(`pool = 1: device 1 claimed ${ready.instance!.containerName}: ${last.trim().split('\n').pop()}`);
    await device.release();
    await waitFor('the claimed container gone', async () => (!(await containers()).includes(ready.instance!.containerName) ? true : undefined), { timeoutMs: 60_000, intervalMs: 1000 });
    // The pool off again: its member goes when the orchestrator next tells the agent.
    await sh(orch, `sed -i 's|^pool = 1$|pool = 0|' /etc/orchestrator/orchestrator.ini
systemctl restart orchestrator`);
    await waitFor('no pool member left', async () => ((await containers()).some((c) => c.startsWith('pool-')) ? undefined : true), { timeoutMs: 60_000, intervalMs: 1000 });
    done.add('pool');
  });

  it('with attach = pipework (the upstream script, the package\'s drop-in and tmpfiles entry), a device reaches a container pipework attached', { timeout: 600_000 }, async () => {
    requires('pool');
    // As an operator installs it from upstream: the repository's unchanged copy (third_party/pipework).
    copyFileSync(join(repoRoot(), 'third_party/pipework/pipework'), join(dock.root, 'usr/local/bin/pipework'));
    await sh(dock, `chmod 0755 /usr/local/bin/pipework
install -m 0644 ${AGENT_EXAMPLES}/unionize-pipework.tmpfiles.conf /etc/tmpfiles.d/unionize-pipework.conf
systemd-tmpfiles --create unionize-pipework.conf
install -D -m 0644 ${AGENT_EXAMPLES}/unionize-pipework.conf /etc/systemd/system/unionize.service.d/pipework.conf
sed -i -e 's|^attach = native|attach = pipework|' -e 's|^;pipework = |pipework = |' /etc/unionize/unionize.ini
systemctl daemon-reload
systemctl restart unionize`);
    await active(dock, 'unionize');
    // The restarted daemon's own start line (journald may take a moment to have it).
    await waitFor('unionize started with attach = pipework', async () => {
      const pid = (await dock.exec(['systemctl', 'show', '--property=MainPID', '--value', 'unionize'])).stdout.trim();
      const lines = (await dock.exec(['journalctl', '-u', 'unionize', '--no-pager', '-o', 'cat', '-n', '100'])).stdout.split('\n');
      return lines.some((l) => l.includes(`"pid":${pid},`) && l.includes('"msg":"starting"') && l.includes('"attach":"pipework"')) ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });

    const again = await device.lease(60_000);
    const ready = await readyClient(again.duid, 'device 1 ready with a pipework-attached container', { dock: ['unionize'] });
    const address = ready.instance!.address.split('/')[0]!;
    const page = await pageFrom(names.devices[0]!, address, 'the pipework-attached container\'s page from the device', 30_000, 500);
    expect(page).toContain(again.duid);
    log(`attach = pipework: device 1 reaches ${ready.instance!.containerName} at ${address}`);
  });

  it('apt-get purge takes what each install made, and leaves the keys and certificates the operator made', { timeout: 300_000 }, async () => {
    requires('install');
    await sh(orch, 'apt-get purge -y unionize-orchestrator');
    await sh(dock, 'apt-get purge -y unionize-agent');
    const exists = async (machine: Machine, path: string) => (await machine.exec(['test', '-e', path])).code === 0;
    const check = async (machine: Machine, gone: string[], kept: string[]) => {
      for (const path of gone) expect(await exists(machine, path), `${path} after the purge in ${machine.name}`).toBe(false);
      for (const path of kept) expect(await exists(machine, path), `${path} kept in ${machine.name}`).toBe(true);
    };
    await check(orch, [
      LIB, '/usr/bin/orchestratorctl', '/etc/orchestrator/orchestrator.ini', '/etc/orchestrator/hook.ini', '/var/lib/orchestrator',
      '/var/spool/orchestrator-hook', '/usr/lib/systemd/system/orchestrator.service', '/usr/lib/tmpfiles.d/unionize-orchestrator.conf',
    ], ['/etc/unionize/pki/ca.crt', '/etc/unionize/pki/keys/hook.keys', '/etc/dnsmasq-devnet.conf']);
    expect((await orch.exec(['getent', 'passwd', 'orchestrator'])).code, 'the orchestrator user').not.toBe(0);
    await check(dock, [LIB, '/etc/unionize/unionize.ini', '/usr/lib/systemd/system/unionize.service'], ['/etc/unionize/pki/unionize.key', '/etc/unionize/orchestrator.keys']);
    for (const [machine, pkg] of [[orch, 'unionize-orchestrator'], [dock, 'unionize-agent']] as const) {
      const status = await machine.exec(['dpkg-query', '-W', '-f', '${db:Status-Status}', pkg]);
      expect(status.code !== 0 || status.stdout.trim() === 'not-installed', `${pkg}: ${status.stdout}${status.stderr}`).toBe(true);
    }
    log('both packages purged: what they installed is gone, the operator\'s keys and files stay');
  });
});
