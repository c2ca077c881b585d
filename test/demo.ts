import type { AgentList, PoolStatus } from '@unionize/protocol';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { startLab, type Lab } from './lab/lab.js';
import { repoRoot } from './lab/repo.js';
import { KEEP_ALL_PROFILE, keepExportAndLoad, removeKeptImages, type KeptCheck } from './support/kept.js';
import { OrchestratorApi } from './support/orchestrator-api.js';
import { SpooledEvents } from './support/spool-events.js';
import { followPretty } from './support/pretty-logs.js';

/**
 * npm run demo [-- --devices N] [--qemu M] [--pool P] [--orchestrators 2 [--failover]] [--once] [--logs] [--keep]
 *
 * Builds the lab (real dnsmasq, dhclient, dockerd, orchestrator, unionize),
 * leases N devices, checks each reaches its own container (ping6 and its
 * page) and no other device's (isolation: it tries every other container,
 * `reachesOthers` true if any answered), prints a table, and keeps running until Ctrl-C; with --once it
 * prints one JSON line, tears everything down and exits (1 if any failed).
 * --qemu M adds M QEMU VMs on the device bridge (test/lab/qemu.ts): each
 * takes its own lease and fetches its container's page itself. --logs
 * follows the daemons' and the hook's logs, pretty-printed (pino-pretty).
 * --keep (issue 20): every device's profile keeps its container; each device
 * writes a file in it and releases its lease; its kept image is exported
 * (orchestratorctl export) and loaded on the lab's second docker engine,
 * whose container must print the file: `kept` per device
 * (`{ image, exportBytes, fileFound }`), and the run fails without it.
 * --pool P (issue 18): the agent keeps P started containers (`[instances]
 * pool`); the devices lease once the pool is full, each says whether its
 * container was a claimed member (`pooled`), and the JSON has the pool's
 * counts (`pool`: size, ready, claims, misses).
 * --orchestrators 2 (issue 19): an orchestrator pair on a PostgreSQL server of
 * the lab's own, the hook given both. With --failover, once the N devices
 * are ready the leader is killed (kill -9), N more devices lease, and the
 * JSON has `failover`: `tookOverMs` (from the kill until the standby leads)
 * and `lost` (spooled events not journaled and applied): ok only if all 2N
 * devices reach their containers and none was lost.
 */

interface DeviceResult {
  device: string;
  duid: string | null;
  address: string | null;
  container: string | null;
  containerAddress: string | null;
  reachable: boolean;
  /** It reached another device's container (ping6 or HTTP answered): isolation failed. */
  reachesOthers: boolean;
  /** --keep: the kept image, its export's size, and whether the file came back. */
  kept?: KeptCheck;
  /** --pool: its container was a warm pool member it claimed (not made cold). */
  pooled?: boolean;
  error?: string;
}

/** Does the device get an answer from this address? */
type Probe = (address: string) => Promise<boolean>;

interface Provisioned {
  result: DeviceResult;
  probe: Probe;
}

function usage(message: string): never {
  process.stderr.write(`demo: ${message}\nusage: npm run demo -- [--devices N] [--qemu M] [--pool P] [--orchestrators 2 [--failover]] [--once] [--logs] [--keep]\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '3' },
    qemu: { type: 'string', default: '0' },
    pool: { type: 'string', default: '0' },
    orchestrators: { type: 'string', default: '1' },
    failover: { type: 'boolean', default: false },
    once: { type: 'boolean', default: false },
    logs: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) usage('help');
const deviceCount = Number(values.devices);
const vmCount = Number(values.qemu);
const poolSize = Number(values.pool);
if (!Number.isInteger(poolSize) || poolSize < 0 || poolSize > 32) usage('--pool must be 0..32 (unionize\'s [pool] max_containers)');
if (!Number.isInteger(vmCount) || vmCount < 0 || vmCount > 8) usage('--qemu must be 0..8');
if (!Number.isInteger(deviceCount) || deviceCount < (vmCount > 0 ? 0 : 1) || deviceCount > 64) usage('--devices must be 1..64 (0..64 with --qemu)');
const orchestratorCount = Number(values.orchestrators);
if (orchestratorCount !== 1 && orchestratorCount !== 2) usage('--orchestrators must be 1 or 2');
if (values.failover && orchestratorCount !== 2) usage('--failover needs --orchestrators 2');
if (values.failover && (deviceCount > 32 || vmCount > 0 || values.keep || poolSize > 0)) usage('--failover takes --devices up to 32 (it leases as many again after the failover), without --qemu, --keep or --pool');

const say = (line: string) => process.stderr.write(`${line}\n`);

async function provision(lab: Lab, api: OrchestratorApi, index: number): Promise<Provisioned> {
  const result: DeviceResult = {
    device: `lab-dev-${index}`, duid: null, address: null, container: null, containerAddress: null, reachable: false, reachesOthers: false,
  };
  const probe: Probe = async (address) => (await lab.ping(index, address)) || (await lab.httpGet(index, `http://[${address}]/`)).status !== 0;
  try {
    const lease = await lab.lease(index);
    Object.assign(result, { duid: lease.duid, address: lease.address });
    const client = await api.waitForClient(lease.duid, (c) => c.state === 'ready' || c.state === 'failed');
    if (client.state !== 'ready' || !client.instance) throw new Error(`client ${client.state}: ${client.stateReason}`);
    const containerAddress = client.instance.address.split('/')[0]!;
    Object.assign(result, { container: client.instance.containerName, containerAddress });
    if (poolSize > 0) result.pooled = (await lab.docker.getContainer(client.instance.containerName).inspect()).Config.Labels['io.unionize.pool'] !== undefined;
    const pinged = await lab.ping(index, containerAddress);
    const page = await lab.httpGet(index, `http://[${containerAddress}]/`);
    const pageNamesDevice = page.status === 200 && page.body.includes(lease.duid);
    result.reachable = pinged && pageNamesDevice;
    if (!pinged) result.error = 'ping6 failed';
    else if (!pageNamesDevice) result.error = `page: ${page.status} ${page.error ?? 'does not name the device'}`;
  } catch (error) {
    result.error = (error as Error).message;
  }
  return { result, probe };
}

/** Until the agent's pool (dock1's default) is as wanted, by /v1/agents; 3 minutes at most. */
async function waitForPool(api: OrchestratorApi, done: (p: PoolStatus) => boolean): Promise<PoolStatus> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const pool = (await api.get<AgentList>('/v1/agents')).agents.find((a) => a.name === 'dock1')?.pools?.find((p) => p.name === 'default');
    if (pool && done(pool)) return pool;
    if (Date.now() > deadline) throw new Error(`warm pool not as wanted after 3 minutes: ${JSON.stringify(pool ?? null)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** --failover: kill -9 the pair's leader (orch1, which leads at the start); resolves with the ms until orch2 leads. */
async function killTheLeader(lab: Lab): Promise<number> {
  const standby = new OrchestratorApi({ url: lab.orchestratorUrls[1]!, caFile: lab.caFile, keysDir: lab.keysDir });
  try {
    const killed = Date.now();
    await lab.daemons.orchestrator!.crash();
    for (;;) {
      const { status, json } = await standby.call('GET', '/v1/leadership').catch(() => ({ status: 0, json: null }));
      if (status === 200 && (json as { role?: string }).role === 'leader') return Date.now() - killed;
      if (Date.now() - killed > 60_000) throw new Error('the standby did not take the lead within 60 s of the kill');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await standby.close();
  }
}

/** A QEMU VM: it leases, and fetches its own container's page over IPv6 itself. */
async function provisionVm(lab: Lab, api: OrchestratorApi): Promise<Provisioned> {
  const result: DeviceResult = {
    device: 'lab-vm-?', duid: null, address: null, container: null, containerAddress: null, reachable: false, reachesOthers: false,
  };
  let probe: Probe = async () => false;
  try {
    const vm = await lab.startVm();
    probe = (address) => vm.ping(address);
    result.device = vm.hostname;
    const lease = await vm.lease(60_000);
    Object.assign(result, { duid: lease.duid, address: lease.address });
    const client = await api.waitForClient(lease.duid, (c) => c.state === 'ready' || c.state === 'failed', 60_000);
    if (client.state !== 'ready' || !client.instance) throw new Error(`client ${client.state}: ${client.stateReason}`);
    const containerAddress = client.instance.address.split('/')[0]!;
    Object.assign(result, { container: client.instance.containerName, containerAddress });
    const page = await vm.fetch(`http://[${containerAddress}]/`, 30_000);
    result.reachable = page.rc === 0 && page.body.includes(lease.duid);
    if (!result.reachable) result.error = page.rc === 0 ? 'page does not name the VM' : `VM's wget exited ${page.rc}`;
    say(`${vm.hostname}: lease ${vm.timings.lease} ms, page ${vm.timings.page} ms after qemu start (${vm.options.accel})`);
  } catch (error) {
    result.error = (error as Error).message.split('\n')[0];
  }
  return { result, probe };
}

/**
 * Isolation: each device tries every other device's container; one answer is
 * enough to fail. A probe that throws counts as an answer (not proven isolated).
 */
async function probeOthers(all: readonly Provisioned[]): Promise<void> {
  await Promise.all(
    all.map(async ({ result, probe }) => {
      const others = all.map((p) => p.result.containerAddress).filter((a): a is string => a !== null && a !== result.containerAddress);
      const answers = await Promise.all(
        others.map((address) =>
          probe(address).catch((error: unknown) => {
            result.error ??= `probing ${address}: ${(error as Error).message}`;
            return true;
          }),
        ),
      );
      result.reachesOthers = answers.some(Boolean);
      if (result.reachesOthers) result.error ??= 'reached another device\'s container';
    }),
  );
}

function table(rows: DeviceResult[]): string {
  const pooled = rows.some((r) => r.pooled !== undefined);
  const header = ['device', 'DUID', 'device address', 'container', 'container address', ...(pooled ? ['from pool'] : []), 'reaches others', 'reachable'];
  const cells = rows.map((r) => [
    r.device, r.duid ?? '-', r.address ?? '-', r.container ?? '-', r.containerAddress ?? '-', ...(pooled ? [r.pooled ? 'yes' : 'no (cold)'] : []), r.reachesOthers ? 'YES' : 'no',
    r.reachable ? 'yes' : `NO${r.error ? ` (${r.error})` : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** --keep: each lab device writes, releases, and its kept image is exported and loaded on the other engine. */
async function keepAll(lab: Lab, api: OrchestratorApi, results: DeviceResult[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'demo-keep-'));
  try {
    await Promise.all(
      lab.devices.map(async (d, i) => {
        const result = results[i]!;
        if (!result.duid || !result.container) return;
        try {
          result.kept = await keepExportAndLoad(lab, api, d.index, result.duid, dir);
          say(`${result.device}: kept ${result.kept.image}, export ${result.kept.exportBytes} bytes, file ${result.kept.fileFound ? 'found' : 'NOT found'} on the other engine`);
        } catch (error) {
          result.error ??= (error as Error).message;
        }
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    for (const host of lab.dockerHosts) await removeKeptImages(host);
  }
}

async function main(): Promise<number> {
  say(`starting the lab with ${deviceCount} device(s)${vmCount ? ` and ${vmCount} QEMU VM(s)` : ''}…`);
  const started = Date.now();
  // The logs outlive the lab: after a failure (or Ctrl-C) there is something to read.
  const lab = await startLab({
    devices: values.failover ? deviceCount * 2 : deviceCount, logDir: join(repoRoot(), '.lab', 'logs'), log: process.env.LAB_VERBOSE ? say : undefined,
    ...(orchestratorCount === 2 ? { orchestrators: 2 as const } : {}),
    // --keep: a second engine to load the exports on.
    ...(values.keep ? { dockerHosts: 2 as const, orchestratorExtraIni: KEEP_ALL_PROFILE } : {}),
    ...(poolSize > 0 ? { pool: poolSize } : {}),
  });
  say(`logs: ${lab.logDir} (kept after the demo ends)`);
  const api = new OrchestratorApi({ url: lab.orchestratorUrls, caFile: lab.caFile, keysDir: lab.keysDir });
  const spooled = values.failover ? new SpooledEvents(lab) : undefined;
  if (values.logs) {
    // From here on: every request and event as it happens, one request id from the hook to unionize.
    followPretty(['orchestrator', ...(orchestratorCount === 2 ? ['orchestrator2'] : []), 'unionize', 'dnsmasq', 'hook-flush'].map((n) => `${lab.logDir}/${n}.log`), (text) => void process.stderr.write(text), {
      colorize: Boolean(process.stderr.isTTY),
    });
  }
  try {
    if (poolSize > 0) {
      const t0 = Date.now();
      await waitForPool(api, (p) => p.ready === poolSize);
      say(`warm pool of ${poolSize} full in ${Date.now() - t0} ms`);
    }
    say(`lab ${lab.prefix}::/48 up in ${Date.now() - started} ms; leasing…`);
    const first = values.failover ? lab.devices.slice(0, deviceCount) : lab.devices;
    const provisioned = await Promise.all([
      ...first.map((d) => provision(lab, api, d.index)),
      ...Array.from({ length: vmCount }, () => provisionVm(lab, api)),
    ]);
    let failover: { tookOverMs: number; lost: number } | undefined;
    if (values.failover) {
      const tookOverMs = await killTheLeader(lab);
      say(`failover: the leader killed (kill -9); the standby leads ${tookOverMs} ms later; leasing ${deviceCount} more…`);
      provisioned.push(...(await Promise.all(lab.devices.slice(deviceCount).map((d) => provision(lab, api, d.index)))));
      const { lost, missing } = await spooled!.settle(api, 60_000);
      if (lost > 0) say(`failover: ${lost} spooled event(s) not journaled and applied: ${missing.join(', ')}`);
      failover = { tookOverMs, lost };
    }
    await probeOthers(provisioned);
    const results = provisioned.map((p) => p.result);
    if (values.keep) await keepAll(lab, api, results);
    const ok = results.every((r) => r.reachable && !r.reachesOthers && (!values.keep || r.kept?.fileFound === true)) && (failover === undefined || failover.lost === 0);
    // The counts the agent gave in its last answer (asked each 5 s): after the leases.
    const claimed = results.filter((r) => r.pooled === true).length;
    const pool = poolSize > 0 ? await waitForPool(api, (p) => p.claims + p.misses >= results.length).catch(() => undefined) : undefined;
    process.stdout.write(`${table(results)}\n`);
    if (values.once) {
      const devices = results.map(({ device, duid, address, container, containerAddress, reachable, reachesOthers, kept, pooled, error }) => ({
        device, duid, address, container, containerAddress, reachable, reachesOthers, ...(kept ? { kept } : {}), ...(pooled === undefined ? {} : { pooled }), ...(error ? { error } : {}),
      }));
      spooled?.close();
      await api.close();
      await lab.stop();
      process.stdout.write(`${JSON.stringify({ ok, devices, ...(failover ? { failover } : {}), ...(poolSize > 0 ? { pool: { size: poolSize, claimed, ...(pool ? { ready: pool.ready, claims: pool.claims, misses: pool.misses } : {}) } } : {}) })}\n`);
      return ok ? 0 : 1;
    }
    say('');
    say(`orchestrator API: ${lab.orchestratorUrls.join(', ')} (CA ${lab.caFile}, keys ${lab.keysDir})`);
    say(`dashboard: ${lab.orchestratorUrl}/dashboard (operator token: cat ${lab.dashboardTokenFile}; the lab's CA: ${lab.caFile})`);
    say(`orchestratorctl: npx orchestratorctl --config ${lab.orchestratorIniFile} --url ${lab.orchestratorUrl} clients`);
    say(`metrics: curl -g --cacert ${lab.caFile} -H "authorization: Bearer $(cat ${lab.metricsTokenFile})" ${lab.orchestratorUrl}/metrics`);
    say(`devices: ip netns exec ${lab.devices[0]?.netns ?? '<device>'} curl -g http://[<container address>]/`);
    say(`logs: ${lab.logDir}${vmCount ? ` (VM consoles: vm<N>.log)` : ''}, kept after the demo ends`);
    say('running; Ctrl-C (or SIGTERM) tears everything down.');
    await new Promise(() => setInterval(() => undefined, 60_000));
    return 0;
  } catch (error) {
    await api.close().catch(() => undefined);
    await lab.stop().catch((e: unknown) => say(`teardown: ${(e as Error).message}`));
    throw error;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    say(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.stdout.write(`${JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error), devices: [] })}\n`);
    process.exit(1);
  },
);
