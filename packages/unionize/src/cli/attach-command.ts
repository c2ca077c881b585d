import { createHash } from 'node:crypto';
import { DHCP_ADDRESS } from '@unionize/protocol';
import { DhcpClients } from '../attach/dhcp-client.js';
import { DockerEngineClient } from '../docker/docker-client.js';
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

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/**
 * Docker's socket: --docker-socket, else DOCKER_HOST when it is `unix://PATH`,
 * else /var/run/docker.sock. The command speaks to Docker as the daemon does
 * (docker/engine-http.ts, over the unix socket): a tcp:// or ssh:// DOCKER_HOST
 * is refused with the way out, not tried.
 */
export function dockerSocketFor(socket: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (socket !== undefined) return socket;
  const host = env.DOCKER_HOST;
  if (!host) return DEFAULT_DOCKER_SOCKET;
  if (host.startsWith('unix://') && host.length > 'unix://'.length) return host.slice('unix://'.length);
  throw new Error(`DOCKER_HOST ${host}: unionize attach reaches Docker over its unix socket only (unix:///PATH); give --docker-socket PATH`);
}

/** The lookup on Docker's Engine API, by name or id as Docker resolves them. */
export class EngineLookup implements ContainerLookup {
  constructor(private readonly docker: Pick<DockerEngineClient, 'inspect'>) {}

  async inspect(ref: string): Promise<RunningContainer | null> {
    const info = await this.docker.inspect(ref);
    return info && { id: info.id, name: info.name, pid: info.pid };
  }
}

/** Default MAC when none is given: locally administered unicast (02:...), stable for a container name, so DHCP finds it again. */
export function defaultMac(containerName: string): string {
  const bytes = createHash('sha256').update(`mac\0${containerName}`).digest().subarray(0, 5);
  return ['02', ...Array.from(bytes, (b) => b.toString(16).padStart(2, '0'))].join(':');
}

export const realDeps: AttachCommandDeps = {
  lookup: (args) => new EngineLookup(new DockerEngineClient({ socketPath: dockerSocketFor(args.dockerSocket) })),
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
