import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { KEPT_LABELS } from '@unionize/protocol';
import { isAlive, labEnv, mustRun, run, spawnManaged, waitFor, type ManagedProcess } from './process.js';
import type { LabState } from './state.js';
import type { LogFn, Teardown } from './teardown.js';
import { detachMountsUnder, isMountedUnder, whoMounts } from './mounts.js';

/**
 * The lab's Docker engine: the one DOCKER_HOST names when it answers, or a
 * private dockerd that leaves the host alone (no docker0, no iptables, no
 * ip_forward). Its data root is shared between runs to keep the image, under
 * a lock file; a second concurrent lab gets a data root of its own.
 *
 * A lab's second docker host (`host: 2`) always gets a private dockerd of its
 * own beside the first, with its own socket, exec root and data root (shared
 * between runs under a lock of its own, `docker-2`), whatever DOCKER_HOST says:
 * two agents on one engine would each see the other's containers.
 */

export const LAB_VAR_DIR = '/var/tmp/unionize-lab';
export const MANAGED_LABEL = 'io.unionize.managed';
export const CLIENT_IMAGE = 'unionize-client:latest';

export interface LabDocker {
  socket: string;
  docker: Docker;
  /** true when the lab started this dockerd (and stops it). */
  private: boolean;
  /** Remove the managed containers the lab made (all of them on a private engine). */
  removeManagedContainers(): Promise<number>;
  /** Stop the private dockerd (SIGTERM, or SIGKILL) and start it again on the same socket and data root. */
  restart(options?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }): Promise<void>;
}

interface DockerContext {
  dir: string;
  /** Where the daemons' logs go (the lab's logDir). */
  logDir: string;
  name: string;
  repo: string;
  log: LogFn;
  teardown: Teardown;
  state: LabState;
  /** Which docker host of the lab: 1 (default) or 2. */
  host?: number;
}

/** File and process names of docker host `host`: host 1 keeps the names it always had. */
function hostNames(host: number) {
  const n = host === 1 ? '' : String(host);
  return {
    label: `docker${n}`,
    process: `dockerd${n}`,
    lock: host === 1 ? 'docker.lock' : `docker-${host}.lock`,
    sharedRoot: host === 1 ? 'docker' : `docker-${host}`,
    privateRoot: (lab: string) => (host === 1 ? `docker-${lab}` : `docker-${lab}-${host}`),
    execRoot: `docker${n}-exec`,
    socket: `docker${n}.sock`,
    config: `daemon${n}.json`,
    pidFile: `docker${n}.pid`,
    logFile: `dockerd${n}.log`,
  };
}

function socketFromEnv(): string | undefined {
  const host = process.env.DOCKER_HOST;
  if (!host?.startsWith('unix://')) return undefined;
  return host.slice('unix://'.length);
}

async function answers(docker: Docker): Promise<boolean> {
  try {
    await Promise.race([docker.ping(), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000))]);
    return true;
  } catch {
    return false;
  }
}

/** Take the shared data root's lock, or say who holds it. */
function takeLock(lockFile: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx', 0o600);
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(lockFile, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) return false;
      unlinkSync(lockFile); // stale: its owner is gone
    }
  }
  return false;
}

const ROOT_FORWARDING = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding'];

function readForwarding(): string[] {
  return ROOT_FORWARDING.map((file) => readFileSync(file, 'utf8').trim());
}

/** Detach what a dockerd that had to be killed left mounted under `dir` (it never unmounts them when it deadlocks). */
function detachLeftMounts(dir: string, log: LogFn): void {
  const count = detachMountsUnder(dir);
  if (count > 0) log(`docker: detached ${count} mount(s) dockerd left under ${dir}`);
}

export async function startDocker(ctx: DockerContext): Promise<LabDocker> {
  const { teardown } = ctx;
  const host = ctx.host ?? 1;
  const label = hostNames(host).label;
  const labLog = ctx.log;
  const log: LogFn = host === 1 ? labLog : (line) => labLog(line.replace(/^docker: /, `${label}: `));
  ctx = { ...ctx, log };
  const envSocket = host === 1 ? socketFromEnv() : undefined;
  let socket: string;
  let isPrivate = false;
  let restart: LabDocker['restart'] = async () => {
    throw new Error('cannot restart a dockerd the lab did not start (DOCKER_HOST)');
  };
  const before = new Set<string>();

  if (envSocket && (await answers(new Docker({ socketPath: envSocket })))) {
    socket = envSocket;
    log(`docker: using DOCKER_HOST unix://${socket}`);
  } else {
    if (envSocket) log(`docker: DOCKER_HOST unix://${envSocket} does not answer; starting a private dockerd`);
    isPrivate = true;
    ({ socket, restart } = await startPrivateDockerd(ctx));
  }
  const docker = new Docker({ socketPath: socket });

  const listManaged = (): Promise<Docker.ContainerInfo[]> =>
    docker.listContainers({ all: true, filters: { label: [`${MANAGED_LABEL}=true`] } });

  const removeManagedContainers = async (): Promise<number> => {
    const mine = (await listManaged()).filter((c) => !before.has(c.Id));
    await Promise.all(mine.map((c) => removeContainer(docker, c.Id)));
    if (mine.length > 0) log(`docker: removed ${mine.length} managed container(s)`);
    return mine.length;
  };

  // On a shared engine only what appeared during the lab is the lab's.
  if (!isPrivate) for (const c of await listManaged()) before.add(c.Id);
  // On the private engine anything managed is left from an earlier, killed lab: its containers and kept images.
  else {
    await removeManagedContainers();
    await removeLeftKeptImages(docker, log);
  }
  teardown.add(host === 1 ? 'managed containers' : `managed containers (${label})`, async () => {
    await removeManagedContainers();
  });

  const started = Date.now();
  await mustRun([join(ctx.repo, 'client-image', 'build.sh'), CLIENT_IMAGE], {
    env: labEnv({ DOCKER_HOST: `unix://${socket}` }),
    timeoutMs: 120_000,
  });
  log(`docker: image ${CLIENT_IMAGE} ready in ${Date.now() - started} ms`);
  return { socket, docker, private: isPrivate, removeManagedContainers, restart };
}

/** Kept images (labelled KEPT_LABELS.kept) an earlier lab left in the private data root: a lab starts with none. */
async function removeLeftKeptImages(docker: Docker, log: LogFn): Promise<void> {
  const left = await docker.listImages({ filters: { label: [`${KEPT_LABELS.kept}=true`] } });
  for (const image of left) await docker.getImage(image.Id).remove({ force: true });
  if (left.length > 0) log(`docker: removed ${left.length} kept image(s) an earlier lab left`);
}

/** Remove one container; when dockerd says a directory is busy, say which mounts hold it. */
async function removeContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
  } catch (err) {
    const busy = /unlinkat (\S+): device or resource busy/.exec(String(err));
    if (busy) throw new Error(`${String(err)}\nmounted at ${busy[1]}:\n${whoMounts(busy[1]!)}`, { cause: err });
    throw err;
  }
}

async function startPrivateDockerd(ctx: DockerContext): Promise<{ socket: string; restart: LabDocker['restart'] }> {
  const { dir, name, log, teardown, state } = ctx;
  const files = hostNames(ctx.host ?? 1);
  mkdirSync(LAB_VAR_DIR, { recursive: true, mode: 0o700 });
  const lockFile = join(LAB_VAR_DIR, files.lock);
  let dataRoot = join(LAB_VAR_DIR, files.sharedRoot);
  if (takeLock(lockFile)) {
    state.add('lockFiles', lockFile);
    teardown.add(`${files.label} data root lock`, () => {
      rmSync(lockFile, { force: true });
      state.remove('lockFiles', lockFile);
    });
  } else {
    dataRoot = join(LAB_VAR_DIR, files.privateRoot(name));
    log(`docker: shared data root is in use by another lab; using ${dataRoot} (the image is built afresh)`);
    state.add('removeDirs', dataRoot);
    teardown.add(`private ${files.label} data root`, async () => {
      detachLeftMounts(dataRoot, log);
      if (isMountedUnder(dataRoot)) throw new Error(`${dataRoot} still has mounts; left in place`);
      rmSync(dataRoot, { recursive: true, force: true });
      state.remove('removeDirs', dataRoot);
    });
  }
  const execRoot = join(dir, files.execRoot);
  // dockerd's and its containerd's temporary files: when containerd stops answering its health checks
  // (a loaded machine), dockerd asks it for a goroutine dump (SIGUSR1) before restarting it, and
  // containerd writes containerd.PID.stacks.log into TMPDIR. Here it goes with the lab's directory.
  const tmpDir = join(dir, `${files.execRoot}-tmp`);
  mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
  const socket = join(dir, files.socket);
  const configFile = join(dir, files.config);
  writeFileSync(configFile, '{}\n');
  mkdirSync(dataRoot, { recursive: true, mode: 0o700 });

  const argv = [
    'dockerd',
    '--config-file', configFile,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', join(dir, files.pidFile),
    '-H', `unix://${socket}`,
    // Leave the host's network alone: no docker0, no firewall rules, no ip_forward.
    '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false',
    '--userland-proxy=false',
  ];
  const docker = new Docker({ socketPath: socket });
  let dockerd: ManagedProcess;

  const launch = async (): Promise<void> => {
    const forwardingBefore = readForwarding();
    dockerd = spawnManaged(files.process, argv, { logFile: join(ctx.logDir, files.logFile), env: labEnv({ TMPDIR: tmpDir }) });
    state.addProcess(files.process, dockerd.pid, true);
    await waitFor(`${files.process} to answer /_ping`, async () => ((await answers(docker)) ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 200,
      abort: () => (dockerd.running ? undefined : `dockerd exited: ${dockerd.tail(5)}`),
    });
    const forwardingAfter = readForwarding();
    if (forwardingAfter.join() !== forwardingBefore.join()) {
      // Should not happen with --ip-forward=false; put the host back as it was.
      ROOT_FORWARDING.forEach((file, i) => writeFileSync(file, `${forwardingBefore[i]}\n`));
      log(`docker: WARNING dockerd changed root forwarding (${forwardingAfter.join()}); restored ${forwardingBefore.join()}`);
    }
  };
  const halt = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    await dockerd.stop({ signal, graceMs: 20_000 });
    state.removeProcess(dockerd.pid);
  };

  // What a stopped dockerd left mounted is nobody's: a killed one never unmounts, and one stopped while it
  // starts a container can mount that container's overlay after it detached its own bind of the data root.
  // That mount then sits under the next dockerd's bind, out of reach of its unmount, and the container can
  // never be removed ("unlinkat …/merged: device or resource busy"). Ours alone: the shared data root is
  // ours while we hold its lock, a private one always.
  const detachAfterStop = (): void => {
    detachLeftMounts(execRoot, log);
    detachLeftMounts(dataRoot, log);
  };
  teardown.add(files.process, async () => {
    await halt();
    detachAfterStop();
    if (existsSync(execRoot) && !isMountedUnder(execRoot)) rmSync(execRoot, { recursive: true, force: true });
  });
  // An earlier lab's dockerd that was killed with the lab may have left mounts on this data root too.
  detachAfterStop();
  await launch();
  const restart: LabDocker['restart'] = async (options = {}) => {
    log(`docker: restarting dockerd ${dockerd.pid} (${options.signal ?? 'SIGTERM'})`);
    await halt(options.signal);
    detachAfterStop();
    if (options.downMs) await new Promise((r) => setTimeout(r, options.downMs));
    await launch();
    log(`docker: dockerd back as ${dockerd.pid}`);
  };
  log(`docker: private dockerd ${dockerd!.pid} on ${socket} (data root ${dataRoot})`);
  return { socket, restart };
}
