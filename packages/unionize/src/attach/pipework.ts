import { readlinkSync, unlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isDhcpAddress } from '@unionize/protocol';
import { AttachError } from '../errors.js';
import type { AttachResult, AttachTarget, Attacher } from './native.js';
import { readLinks, readNetnsState } from './netns-state.js';
import { CONTAINER_IF, DEFAULT_TOOLS, checkSpec, hostVethName, isAttachedIn, nsenterCommand, planDetach, type Step, type Tools } from './plan.js';
import { CommandError, runCommand, type Command, type CommandRunner } from './run-command.js';
import { checkTool } from './tool-check.js';

/**
 * The `pipework` backend, for sites that already plumb containers with
 * jpetazzo's pipework script. It is called with an argument array, in
 * pipework's own order (the script reads its options positionally):
 *
 *   pipework BRIDGE -i eth1 -l HOSTVETH -a 6 CONTAINER ADDRESS/PREFIX MAC
 *
 * - `-l HOSTVETH`: the same host end name as the native backend, so detach
 *   and a stale-veth clean-up find it.
 * - `-a 6`: pipework's address family flag, making its `ip` calls `ip -6`.
 * - No `@GATEWAY`: pipework's gateway code adds `GATEWAY/32` as an on-link
 *   route when `ip route get` fails, an IPv4 assumption that would make a
 *   whole IPv6 /32 on-link. unionize sets the IPv6 default route itself
 *   afterwards (`nsenter -t PID -n ip -6 route replace default via GW dev eth1`).
 * - pipework adds the address without `nodad`: beforehand unionize turns DAD
 *   off in the container's namespace for interfaces that arrive there
 *   (`net.ipv6.conf.default.accept_dad=0`; a moved interface takes the new
 *   namespace's defaults), so the address is usable at once.
 * - pipework finds the container with `docker inspect NAME`: its environment
 *   carries DOCKER_HOST for unionize's socket.
 * - Its PATH starts with the package's libexec/pipework-path, whose `busybox`
 *   answers the one IPv4-only question pipework asks busybox (`ipcalc -b`)
 *   for an IPv6 address: without it, pipework cannot add an IPv6 address on a
 *   host where busybox is installed (tested against the real script).
 *
 * pipework's `dhcp` mode runs a DHCPv4 client (and the host's dhclient-script,
 * which rewrites the host's resolv.conf): DHCP addressing needs the native
 * backend, and this one says so (`dhcp` is false).
 */

/** Put first on pipework's PATH (libexec/pipework-path/busybox says why), from src/attach or dist/attach alike. */
export const PIPEWORK_PATH_DIR = fileURLToPath(new URL('../../libexec/pipework-path', import.meta.url));

export interface PipeworkAttacherOptions {
  /** Path of the pipework executable ([network] pipework). */
  pipework: string;
  bridge: string;
  gateway?: string | undefined;
  /** Extra environment for pipework, e.g. `{ DOCKER_HOST: 'unix:///run/docker.sock' }`. */
  env?: Readonly<Record<string, string>>;
  tools?: Tools;
  /** For tests. */
  run?: CommandRunner;
  procRoot?: string;
  /** pipework's own time limit (it waits up to 3 s for docker inspect): default 30 s. */
  timeoutMs?: number;
  /** Where pipework links namespaces for `ip netns` (for tests): default /var/run/netns. */
  netnsDir?: string;
}

export class PipeworkAttacher implements Attacher {
  readonly dhcp = false;
  readonly #options: PipeworkAttacherOptions;
  readonly #tools: Tools;
  readonly #run: CommandRunner;
  readonly #proc: string;
  readonly #netnsDir: string;

  constructor(options: PipeworkAttacherOptions) {
    this.#options = options;
    this.#tools = options.tools ?? DEFAULT_TOOLS;
    const timeout = options.timeoutMs ?? 30_000;
    this.#run = options.run ?? ((command) => runCommand(command, command.file === options.pipework ? timeout : 10_000));
    this.#proc = options.procRoot ?? '/proc';
    this.#netnsDir = options.netnsDir ?? '/var/run/netns';
  }

  /** pipework's argument array for one container. */
  static argv(target: AttachTarget, bridge: string): string[] {
    const ifname = target.ifname ?? CONTAINER_IF;
    const veth = target.hostVeth ?? hostVethName(target.name, ifname);
    return [bridge, '-i', ifname, '-l', veth, '-a', '6', target.name, target.address, target.mac];
  }

  /** Start-up check: the executable runs (pipework prints its usage and exits 1 without arguments). */
  async preflight(): Promise<void> {
    // Without arguments pipework prints its usage and exits 1: it ran.
    await checkTool(this.#run, { file: this.#options.pipework, args: [] }, 'attach = pipework, [network] pipework');
    await checkTool(this.#run, { file: this.#tools.sysctl ?? 'sysctl', args: ['--version'] }, 'DAD off in the container before pipework; Debian package procps');
  }

  #spec(target: AttachTarget) {
    return { ...target, bridge: this.#options.bridge, gateway: this.#options.gateway };
  }

  async isAttached(target: AttachTarget): Promise<boolean> {
    if (isDhcpAddress(target.address)) return false;
    try {
      return isAttachedIn(await readNetnsState(`${this.#proc}/${target.pid}/net`), this.#spec(target));
    } catch {
      return false;
    }
  }

  async addressOf(target: AttachTarget): Promise<string | null> {
    return (await this.isAttached(target)) ? target.address : null;
  }

  /** The steps around pipework: clean-up before it, DAD off, pipework, then the IPv6 default route. */
  plan(target: AttachTarget, containerLinks: ReadonlySet<string>, hostLinks: ReadonlySet<string>): Step[] {
    const spec = this.#spec(target);
    checkSpec(spec);
    const ifname = target.ifname ?? CONTAINER_IF;
    const veth = target.hostVeth ?? hostVethName(target.name, ifname);
    const steps: Step[] = [];
    if (containerLinks.has(ifname)) {
      // pipework renames its veth to eth1 and fails if one is there (a half-done attach).
      steps.push({ what: `remove ${ifname}`, command: nsenterCommand(spec.pid, this.#tools, this.#tools.ip, ['link', 'del', ifname]) });
    }
    if (hostLinks.has(veth)) {
      // pipework refuses a host end that is up ("Link ... exists and is up").
      steps.push({ what: `remove stale ${veth}`, command: { file: this.#tools.ip, args: ['link', 'del', veth] }, tolerate: /Cannot find device/ });
    }
    steps.push({
      what: 'DAD off for new interfaces',
      command: nsenterCommand(spec.pid, this.#tools, this.#tools.sysctl ?? 'sysctl', [
        '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0',
      ]),
    });
    const pipework: Command = { file: this.#options.pipework, args: PipeworkAttacher.argv(target, this.#options.bridge) };
    const path = `${PIPEWORK_PATH_DIR}:${this.#options.env?.PATH ?? process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`;
    steps.push({ what: 'pipework', command: { ...pipework, env: { ...this.#options.env, PATH: path } } });
    if (spec.gateway !== undefined) {
      steps.push({
        what: 'IPv6 default route',
        command: nsenterCommand(spec.pid, this.#tools, this.#tools.ip, ['-6', 'route', 'replace', 'default', 'via', spec.gateway, 'dev', ifname]),
      });
    }
    return steps;
  }

  async attach(target: AttachTarget): Promise<AttachResult> {
    const started = performance.now();
    if (isDhcpAddress(target.address)) {
      throw new AttachError(`attach ${target.name}: the pipework backend does static addresses only; DHCP addressing needs [network] attach = native`);
    }
    let steps: Step[];
    try {
      const [container, hostLinks] = await Promise.all([
        readNetnsState(`${this.#proc}/${target.pid}/net`),
        readLinks(`${this.#proc}/self/net`),
      ]);
      if (isAttachedIn(container, this.#spec(target))) return { changed: false, spawns: 0, ms: 0, address: target.address };
      steps = this.plan(target, container.links, hostLinks);
    } catch (error) {
      const gone = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new AttachError(
        gone ? `attach ${target.name}: container process ${target.pid} is gone` : `attach ${target.name}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    for (const step of steps) {
      try {
        await this.#run(step.command);
      } catch (error) {
        if (error instanceof CommandError && step.tolerate?.test(error.stderr)) continue;
        if (step.what === 'pipework') this.#removeNetnsLink(target.pid);
        throw new AttachError(`attach ${target.name}: ${step.what}: ${(error as Error).message}`, { cause: error });
      }
    }
    return { changed: true, spawns: steps.length, ms: Math.round((performance.now() - started) * 10) / 10, address: target.address };
  }

  /**
   * pipework names the container's namespace in `ip netns` by a link
   * /var/run/netns/PID → /proc/PID/ns/net and removes it when it succeeds;
   * when it fails half way it leaves it. Remove it then (that link only).
   */
  #removeNetnsLink(pid: number): void {
    const link = `${this.#netnsDir}/${pid}`;
    try {
      if (readlinkSync(link) === `/proc/${pid}/ns/net`) unlinkSync(link);
    } catch {
      /* none, or not pipework's */
    }
  }

  async detach(name: string): Promise<void> {
    for (const step of planDetach(name, await readLinks(`${this.#proc}/self/net`), this.#tools)) {
      try {
        await this.#run(step.command);
      } catch (error) {
        if (error instanceof CommandError && step.tolerate?.test(error.stderr)) continue;
        throw new AttachError(`detach ${name}: ${step.what}: ${(error as Error).message}`, { cause: error });
      }
    }
  }
}
