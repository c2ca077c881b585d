import { performance } from 'node:perf_hooks';
import { AttachError } from '../errors.js';
import { readLinks, readNetnsState } from './netns-state.js';
import { DEFAULT_TOOLS, isAttachedIn, planAttach, planDetach, type Step, type Tools } from './plan.js';
import { CommandError, runCommand, type CommandRunner } from './run-command.js';

/** Gives a running container its eth1 on the container bridge. */
export interface AttachTarget {
  name: string;
  /** Host PID of the container's init, taken right before the call. */
  pid: number;
  mac: string;
  /** eth1 address with prefix length. */
  address: string;
}

export interface AttachResult {
  /** false when eth1 already had the address and route: nothing was run. */
  changed: boolean;
  /** Processes spawned. */
  spawns: number;
  ms: number;
}

export interface Attacher {
  /** eth1 in the container holds the address and the default route. Never throws. */
  isAttached(target: AttachTarget): Promise<boolean>;
  /** Idempotent; throws AttachError carrying the failing command's stderr. */
  attach(target: AttachTarget): Promise<AttachResult>;
  /** Drops the host end of a removed container's veth at once instead of when the kernel gets to it. */
  detach(name: string): Promise<void>;
}

export interface NativeAttacherOptions {
  bridge: string;
  gateway: string;
  tools?: Tools;
  /** For tests: the command runner and the /proc to read. */
  run?: CommandRunner;
  procRoot?: string;
}

/** The `native` backend: iproute2 and nsenter (util-linux), run without a shell. */
export class NativeAttacher implements Attacher {
  readonly #bridge: string;
  readonly #gateway: string;
  readonly #tools: Tools;
  readonly #run: CommandRunner;
  readonly #proc: string;

  constructor(options: NativeAttacherOptions) {
    this.#bridge = options.bridge;
    this.#gateway = options.gateway;
    this.#tools = options.tools ?? DEFAULT_TOOLS;
    this.#run = options.run ?? ((command) => runCommand(command));
    this.#proc = options.procRoot ?? '/proc';
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
    try {
      await this.#run({ file: this.#tools.nsenter, args: ['--version'] });
    } catch (error) {
      throw new Error(`nsenter: not usable: ${(error as Error).message}`);
    }
  }

  async isAttached(target: AttachTarget): Promise<boolean> {
    try {
      return isAttachedIn(await readNetnsState(`${this.#proc}/${target.pid}/net`), { ...target, gateway: this.#gateway });
    } catch {
      return false;
    }
  }

  async attach(target: AttachTarget): Promise<AttachResult> {
    const started = performance.now();
    const spec = { ...target, bridge: this.#bridge, gateway: this.#gateway };
    let steps: Step[];
    try {
      const [container, hostLinks] = await Promise.all([
        readNetnsState(`${this.#proc}/${target.pid}/net`),
        readLinks(`${this.#proc}/self/net`),
      ]);
      steps = planAttach(container, hostLinks, spec, this.#tools);
    } catch (error) {
      const gone = (error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new AttachError(
        gone ? `attach ${target.name}: container process ${target.pid} is gone` : `attach ${target.name}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    await this.#runSteps(`attach ${target.name}`, steps);
    return { changed: steps.length > 0, spawns: steps.length, ms: Math.round((performance.now() - started) * 10) / 10 };
  }

  async detach(name: string): Promise<void> {
    await this.#runSteps(`detach ${name}`, planDetach(name, await readLinks(`${this.#proc}/self/net`), this.#tools));
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

/** `ip -batch` names the failing line ("Command failed -:2"): quote that line, it says more than the number. */
function describeFailure(step: Step, error: unknown): string {
  const message = (error as Error).message;
  if (!(error instanceof CommandError) || step.command.input === undefined) return message;
  const line = /Command failed -:(\d+)/.exec(error.stderr)?.[1];
  const text = line === undefined ? undefined : step.command.input.split('\n')[Number(line) - 1];
  return text === undefined ? message : `${message} (in "${text}")`;
}
