import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { KeptList } from '@unionize/protocol';
import type { Lab, LabDockerHost } from '../lab/lab.js';
import { run, type CommandResult } from '../lab/process.js';
import { repoRoot } from '../lab/repo.js';
import type { OrchestratorApi } from './orchestrator-api.js';

/** Keeping and export (issue 20), as the e2e test and the demo's --keep drive them. */

/** A profile every device matches that keeps its container when the lease ends. */
export const KEEP_ALL_PROFILE = `
[profiles.kept]
keep = true
`;

/** Where a device writes what it made. */
export const VISITOR_FILE = '/visitor-made.txt';

/** orchestratorctl, as built. */
export const CTL_MAIN = join(repoRoot(), 'packages', 'ctl', 'dist', 'main.js');
const CTL = CTL_MAIN;

/** The docker CLI against one of the lab's engines. */
export function dockerCli(host: LabDockerHost, ...args: string[]): Promise<CommandResult> {
  return run(['docker', '-H', `unix://${host.dockerSocket}`, ...args], { timeoutMs: 300_000 });
}

/** The lab's data roots outlive it: its kept (and loaded) images go. */
export async function removeKeptImages(host: LabDockerHost): Promise<void> {
  const listed = await dockerCli(host, 'images', '--filter', 'label=io.unionize.kept=true', '--format', '{{.ID}}');
  const ids = [...new Set(listed.stdout.split('\n').filter(Boolean))];
  if (ids.length > 0) await dockerCli(host, 'rmi', '--force', ...ids);
}

/** `orchestratorctl export CLIENT -o FILE` against the lab's orchestrator. */
export function ctlExport(lab: Lab, clientId: string, file: string): Promise<CommandResult> {
  return run([process.execPath, CTL, '--config', lab.orchestratorIniFile, '--url', lab.orchestratorUrl, '--json', 'export', clientId, '-o', file], { timeoutMs: 600_000 });
}

/** `orchestratorctl share CLIENT --for DURATION` against the lab's orchestrator: its JSON answer (the link). */
export function ctlShare(lab: Lab, clientId: string, duration: string): Promise<CommandResult> {
  return run([process.execPath, CTL, '--config', lab.orchestratorIniFile, '--url', lab.orchestratorUrl, '--json', 'share', clientId, '--for', duration], { timeoutMs: 600_000 });
}

/** `docker load -i FILE` on `host`, then what `cat VISITOR_FILE` prints in a container of `image` there. */
export async function loadAndRead(host: LabDockerHost, file: string, image: string): Promise<{ loaded: CommandResult; read: CommandResult }> {
  const loaded = await dockerCli(host, 'load', '-i', file);
  const read = await dockerCli(host, 'run', '--rm', '--network', 'none', image, 'cat', VISITOR_FILE);
  return { loaded, read };
}

export interface KeptCheck {
  image: string;
  exportBytes: number;
  fileFound: boolean;
}

/**
 * The whole round for one device (demo --keep): it writes a file in its
 * container, releases its lease; its kept image is exported through the
 * orchestrator and loaded on the other engine, whose container must print the file.
 */
export async function keepExportAndLoad(lab: Lab, api: OrchestratorApi, device: number, duid: string, dir: string): Promise<KeptCheck> {
  const client = (await api.clients()).find((c) => c.duid === duid);
  if (!client?.instance) throw new Error(`device ${device}: no container to keep`);
  const host = lab.dockerHosts.find((h) => h.agent === client.instance!.agent)!;
  const other = lab.dockerHosts.find((h) => h !== host) ?? host;
  const content = randomBytes(8).toString('hex');
  const wrote = await dockerCli(host, 'exec', client.instance.containerName, 'sh', '-c', `echo ${content} > ${VISITOR_FILE}`);
  if (wrote.code !== 0) throw new Error(`device ${device}: writing ${VISITOR_FILE}: ${wrote.stderr.trim()}`);
  await lab.release(device);
  await api.waitForClient(duid, (c) => c.state === 'gone' && c.instance === null, 60_000);
  const kept = (await api.get<KeptList>('/v1/kept')).kept.filter((k) => k.clientId === client.id).at(-1);
  if (!kept) throw new Error(`device ${device}: released, but no kept image recorded`);
  const file = join(dir, `${client.id}.tar.gz`);
  const exported = await ctlExport(lab, client.id, file);
  if (exported.code !== 0) throw new Error(`device ${device}: orchestratorctl export: ${exported.stderr.trim()}`);
  const { read } = await loadAndRead(other, file, kept.image);
  return { image: kept.image, exportBytes: statSync(file).size, fileFound: read.stdout.trim() === content };
}
