import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, hookIni, startHookFlusher, writeHookWrapper } from './daemons.js';
import { DNSMASQ_READY_LINE, prepareDnsmasq } from './dnsmasq.js';
import { isAlive } from './process.js';
import type { LabState } from './state.js';
import type { LogFn, Teardown } from './teardown.js';

/**
 * The container bridge in dhcp addressing: a dnsmasq on dock1's brctr,
 * rendered from dnsmasq/container-bridge.conf.example (DHCPv6 on
 * P:3::1000–P:3::1fff, router advertisements), whose script is the hook in
 * role instance (server ctrnet), as config/dnsmasq-ctrnet.service runs it on a
 * docker host. On a second docker host the containers reach it over the
 * shared segment.
 */
export interface ContainerBridgeContext {
  repo: string;
  dir: string;
  /** Where the daemons' logs go (the lab's logDir). */
  logDir: string;
  netns: string;
  bridge: string;
  /** The lab's /48 without `::`. */
  prefix: string;
  leaseSeconds: number;
  /** As the docker host reaches it: over the transit link. */
  orchestratorUrl: string;
  caFile: string;
  /** The hook's key file (its peer: hook). */
  hookKeyFile: string;
  state: LabState;
  log: LogFn;
  teardown: Teardown;
}

export async function startContainerBridgeDnsmasq(ctx: ContainerBridgeContext): Promise<{ daemon: Daemon; leaseFile: string }> {
  const { dir } = ctx;
  const hookConfig = join(dir, 'hook-instance.ini');
  const wrapper = join(dir, 'orchestrator-hook-instance');
  const spoolDir = join(dir, 'spool-ctrnet');
  writeFileSync(
    hookConfig,
    hookIni({
      dir, caFile: ctx.caFile, keyFile: ctx.hookKeyFile, orchestratorUrl: ctx.orchestratorUrl,
      server: 'ctrnet', role: 'instance', spoolDir,
    }),
  );
  writeHookWrapper(wrapper, { spoolDir, repo: ctx.repo });
  await startHookFlusher({
    name: 'hook-flush-ctrnet', netns: ctx.netns, repo: ctx.repo, configFile: hookConfig, intervalSeconds: 10,
    logDir: ctx.logDir, state: ctx.state, log: ctx.log, teardown: ctx.teardown,
  });
  const setup = prepareDnsmasq({
    repo: ctx.repo,
    dir,
    netns: ctx.netns,
    template: 'container-bridge',
    subdir: 'dnsmasq-ctr',
    config: {
      interface: ctx.bridge,
      rangeStart: `${ctx.prefix}:3::1000`,
      rangeEnd: `${ctx.prefix}:3::1fff`,
      prefixLength: 64,
      leaseSeconds: ctx.leaseSeconds,
      hook: wrapper,
    },
  });
  const daemon = new Daemon(
    'dnsmasq-ctr', setup.argv, join(ctx.logDir, 'dnsmasq-ctr.log'), async (since) => since().includes(DNSMASQ_READY_LINE), ctx.state, ctx.log,
  );
  ctx.teardown.add('dnsmasq-ctr', () => daemon.stop());
  await daemon.start(10_000);
  return { daemon, leaseFile: setup.leaseFile };
}

/**
 * SIGKILL the dhclients unionize left under its [dhcp] state_dir (one
 * directory per container, with dhclient.pid): they run outside the lab's
 * namespaces, in containers', and hold those namespaces and their veths.
 */
export function killDhcpClients(stateDir: string, log: LogFn): void {
  let entries: string[];
  try {
    entries = readdirSync(stateDir);
  } catch {
    return;
  }
  for (const entry of entries) {
    try {
      const pid = Number(readFileSync(join(stateDir, entry, 'dhclient.pid'), 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 1 || !isAlive(pid)) continue;
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'dhclient') continue;
      process.kill(pid, 'SIGKILL');
      log(`dhcp clients: killed dhclient ${pid} of ${entry}`);
    } catch {
      /* no pid file, or gone meanwhile */
    }
  }
}
