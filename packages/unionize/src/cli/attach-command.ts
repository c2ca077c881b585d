import { createHash } from 'node:crypto';
import Docker from 'dockerode';
import { DHCP_ADDRESS } from '@unionize/protocol';
import { DhcpClients } from '../attach/dhcp-client.js';
import { NativeAttacher, type Attacher, type AttachTarget } from '../attach/native.js';
import { ATTACH_USAGE, AttachUsageError, parseAttachArgs, type AttachArgs } from './attach-args.js';

/**
 * `unionize attach ...`: attach one running container by hand with the native
 * backend, as pipework would (see attach-args.ts for the arguments). Quiet on
 * success like pipework; one line on stderr and exit 1 on failure, exit 2 on
 * a usage error. In DHCP mode the DHCPv6 client keeps running for the
 * container (state under --state-dir); a running unionize daemon with the
 * same state directory, or the next `unionize attach`, stops it once the
 * container is gone.
 */

export interface RunningContainer {
  id: string;
  /** Docker's name, without the leading slash. */
  name: string;
  pid: number;
}

/** The one Docker question the command asks: which process runs this container (by name or id)? */
export interface ContainerLookup {
  /** null when Docker does not know it; pid 0 when it does not run. */
  inspect(ref: string): Promise<RunningContainer | null>;
}

export interface AttachCommandDeps {
  lookup(args: AttachArgs): ContainerLookup;
  /** The backend for these arguments (tests pass a fake). */
  attacher(args: AttachArgs): Attacher & { preflight?(): Promise<void>; reapDhcp?(): Promise<unknown> };
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/** Docker's socket: --docker-socket, else DOCKER_HOST (any form docker-modem reads), else /var/run/docker.sock. */
export function dockerFor(socket: string | undefined, env: NodeJS.ProcessEnv = process.env): Docker {
  if (socket !== undefined) return new Docker({ socketPath: socket });
  if (env.DOCKER_HOST) return new Docker(); // docker-modem reads DOCKER_HOST (unix://, tcp://) and DOCKER_TLS_VERIFY
  return new Docker({ socketPath: '/var/run/docker.sock' });
}

export class DockerodeLookup implements ContainerLookup {
  constructor(private readonly docker: Docker) {}

  async inspect(ref: string): Promise<RunningContainer | null> {
    try {
      const info = await this.docker.getContainer(ref).inspect();
      return { id: info.Id, name: info.Name.replace(/^\//, ''), pid: info.State.Running ? info.State.Pid : 0 };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return null;
      const modem = error as { json?: { message?: string } | null; message?: string };
      throw new Error(`docker inspect ${ref}: ${(modem.json?.message ?? modem.message ?? String(error)).trim()}`);
    }
  }
}

/** Default MAC when none is given: locally administered unicast (02:...), stable for a container name, so DHCP finds it again. */
export function defaultMac(containerName: string): string {
  const bytes = createHash('sha256').update(`mac\0${containerName}`).digest().subarray(0, 5);
  return ['02', ...Array.from(bytes, (b) => b.toString(16).padStart(2, '0'))].join(':');
}

export const realDeps: AttachCommandDeps = {
  lookup: (args) => new DockerodeLookup(dockerFor(args.dockerSocket)),
  attacher(args) {
    const clients = new DhcpClients({ stateDir: args.stateDir });
    const attacher = new NativeAttacher({
      bridge: args.bridge,
      gateway: args.mode === 'static' ? args.gateway : undefined,
      dhcp: clients,
      leaseWaitMs: args.leaseWaitMs,
    });
    return Object.assign(attacher, { reapDhcp: () => clients.reap() });
  },
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
};

/** Run the command; resolves to the exit status (0 ok, 1 failed, 2 usage). */
export async function runAttachCommand(argv: readonly string[], deps: AttachCommandDeps = realDeps): Promise<number> {
  let args: AttachArgs;
  try {
    const parsed = parseAttachArgs(argv);
    if (parsed.help) {
      deps.stdout(ATTACH_USAGE);
      return 0;
    }
    args = parsed.args;
  } catch (error) {
    if (!(error instanceof AttachUsageError)) throw error;
    deps.stderr(`unionize attach: ${error.message}\n${ATTACH_USAGE}`);
    return 2;
  }
  try {
    await attachOnce(args, deps);
    return 0;
  } catch (error) {
    deps.stderr(`unionize attach: ${(error as Error).message}`);
    return 1;
  }
}

async function attachOnce(args: AttachArgs, deps: AttachCommandDeps): Promise<void> {
  const lookup = deps.lookup(args);
  const attacher = deps.attacher(args);
  await attacher.preflight?.();
  // Clients of containers gone since an earlier `unionize attach ... dhcp`.
  if (args.mode === 'dhcp') await attacher.reapDhcp?.();

  // The PID right before attaching, and the same container after (ARCHITECTURE.md, pitfalls).
  const before = await lookup.inspect(args.container);
  if (!before) throw new Error(`container ${args.container}: not found`);
  if (before.pid <= 0) throw new Error(`container ${before.name}: not running`);
  const target: AttachTarget = {
    name: before.name,
    pid: before.pid,
    mac: args.mac ?? defaultMac(before.name),
    address: args.mode === 'dhcp' ? DHCP_ADDRESS : args.address,
    ifname: args.ifname,
    ...(args.hostVeth === undefined ? {} : { hostVeth: args.hostVeth }),
  };
  const result = await attacher.attach(target);
  const after = await lookup.inspect(before.id);
  if (!after || after.pid !== before.pid) throw new Error(`container ${before.name}: restarted or stopped during attach; run again`);
  if (args.mode === 'dhcp' && result.address == null) {
    deps.stderr(`unionize attach: ${before.name}: no DHCPv6 lease on ${args.ifname} after ${args.leaseWaitMs} ms; the client keeps trying (state in ${args.stateDir}/${before.name})`);
  }
}
