import { performance } from 'node:perf_hooks';
import { isDhcpAddress } from '@unionize/protocol';
import { AttachError } from '../errors.js';
import type { DhcpClients } from './dhcp-client.js';
import { readLinks, readNetnsState, usableGlobalAddress } from './netns-state.js';
import { CONTAINER_IF, DEFAULT_TOOLS, announceCommand, hostVethName, isAttachedIn, planAttach, planDetach, type Step, type Tools } from './plan.js';
import { CommandError, runCommand, type CommandRunner } from './run-command.js';
import { checkTool } from './tool-check.js';

/** Gives a running container its eth1 on the container bridge. */
export interface AttachTarget {
  name: string;
  /** Host PID of the container's init, taken right before the call. */
  pid: number;
  mac: string;
  /** eth1 address with prefix length, or `dhcp`: a DHCPv6 client on eth1 gets it. */
  address: string;
  /** Interface name in the container (`unionize attach -i`); default eth1. */
  ifname?: string;
  /** Host end's name (`unionize attach -l`); default derived from name and ifname. */
  hostVeth?: string;
}

export interface AttachResult {
  /** false when eth1 already had the address and route: nothing was run. */
  changed: boolean;
  /** Processes spawned. */
  spawns: number;
  ms: number;
  /** What eth1 holds when attach returns: the static address, the leased one, or null while the lease is pending. */
  address?: string | null;
}

export interface Attacher {
  /** false when this backend cannot do `address: dhcp` (requests for it are refused up front). Default true. */
  readonly dhcp?: boolean;
  /** eth1 in the container holds the address and the default route (DHCP: eth1 is up and its client runs). Never throws. */
  isAttached(target: AttachTarget): Promise<boolean>;
  /** eth1's address as `address/prefix` when attached (DHCP: the leased address once eth1 holds it), else null. Never throws. */
  addressOf(target: AttachTarget): Promise<string | null>;
  /** Idempotent; throws AttachError carrying the failing command's stderr. */
  attach(target: AttachTarget): Promise<AttachResult>;
  /** Drops the host end of a removed container's veth at once instead of when the kernel gets to it. */
  detach(name: string): Promise<void>;
}

export interface NativeAttacherOptions {
  bridge: string;
  /** Default route for static addresses; none when absent (`unionize attach` without @GATEWAY). */
  gateway?: string | undefined;
  tools?: Tools;
  /** DHCP addressing: the clients' manager. Without it `address: dhcp` fails. */
  dhcp?: DhcpClients;
  /** How long attach waits for the DHCP lease to show on eth1 before it returns with `address: null`. Default 5000. */
  leaseWaitMs?: number;
  /** For tests: the command runner and the /proc to read. */
  run?: CommandRunner;
  procRoot?: string;
}

/** The `native` backend: iproute2 and nsenter (util-linux), run without a shell; DHCP mode adds sysctl and dhclient. */
export class NativeAttacher implements Attacher {
  readonly dhcp: boolean;
  readonly #bridge: string;
  readonly #gateway: string | undefined;
  readonly #tools: Tools;
  readonly #run: CommandRunner;
  readonly #proc: string;
  readonly #clients: DhcpClients | undefined;
  readonly #leaseWaitMs: number;

  constructor(options: NativeAttacherOptions) {
    this.#bridge = options.bridge;
    this.#gateway = options.gateway;
    this.#tools = options.tools ?? DEFAULT_TOOLS;
    this.#run = options.run ?? ((command) => runCommand(command));
    this.#proc = options.procRoot ?? '/proc';
    this.#clients = options.dhcp;
    this.dhcp = options.dhcp !== undefined;
    this.#leaseWaitMs = options.leaseWaitMs ?? 5_000;
  }

  /**
   * Start-up check: the tools run and the bridge exists here and is a bridge.
   * Throws an Error whose message is the one line to print.
   */
  async preflight(): Promise<void> {
    let out: string;
    try {
      out = (await this.#run({ file: this.#tools.ip, args: ['-d', '-j', 'link', 'show', 'dev', this.#bridge] })).stdout;
    } catch (error) {
      throw new Error(`bridge ${this.#bridge}: not usable: ${(error as Error).message}`);
    }
    const links = JSON.parse(out) as Array<{ linkinfo?: { info_kind?: string } }>;
    if (links[0]?.linkinfo?.info_kind !== 'bridge') throw new Error(`bridge ${this.#bridge}: exists but is not a bridge`);
    await checkTool(this.#run, { file: this.#tools.nsenter, args: ['--version'] }, 'every attach; Debian package util-linux');
    if (this.#gateway) await checkTool(this.#run, { file: this.#tools.ping ?? 'ping', args: ['-V'] }, 'the announce after attaching; Debian package iputils-ping');
    if (this.#clients) await checkTool(this.#run, { file: this.#tools.sysctl ?? 'sysctl', args: ['--version'] }, 'dhcp addressing; Debian package procps');
  }

  #spec(target: AttachTarget) {
    return { ...target, bridge: this.#bridge, gateway: isDhcpAddress(target.address) ? undefined : this.#gateway };
  }

  async isAttached(target: AttachTarget): Promise<boolean> {
    try {
      const spec = this.#spec(target);
      if (!isAttachedIn(await readNetnsState(`${this.#proc}/${target.pid}/net`), spec)) return false;
      if (!isDhcpAddress(target.address)) return true;
      return (await this.#clients?.state(target)) === 'running';
    } catch {
      return false;
    }
  }

  async addressOf(target: AttachTarget): Promise<string | null> {
    if (!isDhcpAddress(target.address)) return (await this.isAttached(target)) ? target.address : null;
    try {
      return usableGlobalAddress(await readNetnsState(`${this.#proc}/${target.pid}/net`), target.ifname ?? CONTAINER_IF);
    } catch {
      return null;
    }
  }

  async attach(target: AttachTarget): Promise<AttachResult> {
    const started = performance.now();
    const dhcp = isDhcpAddress(target.address);
    if (dhcp && !this.#clients) throw new AttachError(`attach ${target.name}: DHCP addressing is not configured on this agent`);
    let steps: Step[];
    try {
      const [container, hostLinks] = await Promise.all([
        readNetnsState(`${this.#proc}/${target.pid}/net`),
        readLinks(`${this.#proc}/self/net`),
      ]);
      steps = planAttach(container, hostLinks, this.#spec(target), this.#tools);
    } catch (error) {
      const gone = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new AttachError(
        gone ? `attach ${target.name}: container process ${target.pid} is gone` : `attach ${target.name}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    await this.#runSteps(`attach ${target.name}`, steps);
    if (!dhcp) {
      if (steps.length > 0 && this.#gateway) this.#announce(target);
      return { changed: steps.length > 0, spawns: steps.length, ms: msSince(started), address: target.address };
    }
    const ifname = target.ifname ?? CONTAINER_IF;
    let client: { started: boolean };
    try {
      client = await this.#clients!.start({ name: target.name, pid: target.pid, mac: target.mac, ifname });
    } catch (error) {
      throw new AttachError(`attach ${target.name}: DHCPv6 client: ${(error as Error).message}`, { cause: error });
    }
    const address = await this.#waitForLease(target, ifname);
    const spawns = steps.length + (client.started ? 1 : 0);
    return { changed: spawns > 0, spawns, ms: msSince(started), address };
  }

  /**
   * Bounded wait for the lease on eth1 and the default route from a router
   * advertisement: with Rapid Commit the lease takes about half a second; the
   * RA answering the container's Router Solicitation may wait up to 3 s after
   * the bridge's previous RA (RFC 4861 section 6.2.6, MIN_DELAY_BETWEEN_RAS).
   * At the deadline: the address if there is one (route pending), else null.
   */
  async #waitForLease(target: AttachTarget, ifname: string): Promise<string | null> {
    const deadline = performance.now() + this.#leaseWaitMs;
    for (;;) {
      let address: string | null;
      try {
        const state = await readNetnsState(`${this.#proc}/${target.pid}/net`);
        address = usableGlobalAddress(state, ifname);
        if (address !== null && state.defaultRoutes.some((r) => r.dev === ifname)) return address;
      } catch {
        return null; // the container went away; the caller's same-container check says so
      }
      if (performance.now() >= deadline) return address;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Stop a DHCP client (with its Release) first: it holds the namespace, and so the veth, of a removed container. */
  async detach(name: string, options: { ifname?: string; hostVeth?: string } = {}): Promise<void> {
    if (this.#clients) {
      try {
        await this.#clients.stop(name);
      } catch (error) {
        throw new AttachError(`detach ${name}: DHCPv6 client: ${(error as Error).message}`, { cause: error });
      }
    }
    const veth = options.hostVeth ?? hostVethName(name, options.ifname ?? CONTAINER_IF);
    await this.#runSteps(`detach ${name}`, planDetach(name, await readLinks(`${this.#proc}/self/net`), this.#tools, veth));
  }

  /** Fire and forget: the attach does not wait for it, and a failure only costs the bridges' learning time. */
  #announce(target: AttachTarget): void {
    this.#run(announceCommand(target.pid, this.#tools, target.ifname ?? CONTAINER_IF, this.#gateway!)).catch(() => undefined);
  }

  async #runSteps(what: string, steps: readonly Step[]): Promise<void> {
    for (const step of steps) {
      try {
        await this.#run(step.command);
      } catch (error) {
        if (error instanceof CommandError && step.tolerate?.test(error.stderr)) continue;
        throw new AttachError(`${what}: ${step.what}: ${describeFailure(step, error)}`, { cause: error });
      }
    }
  }
}

const msSince = (started: number) => Math.round((performance.now() - started) * 10) / 10;

/** `ip -batch` names the failing line ("Command failed -:2"): quote that line, it says more than the number. */
function describeFailure(step: Step, error: unknown): string {
  const message = (error as Error).message;
  if (!(error instanceof CommandError) || step.command.input === undefined) return message;
  const line = /Command failed -:(\d+)/.exec(error.stderr)?.[1];
  const text = line === undefined ? undefined : step.command.input.split('\n')[Number(line) - 1];
  return text === undefined ? message : `${message} (in "${text}")`;
}
