import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { inNs, randomMac } from './netns.js';
import { findTool, labSkipReason } from './prereqs.js';
import { labEnv, mustRun, run, type ExitInfo } from './process.js';
import type { LabState } from './state.js';
import type { LogFn, Teardown } from './teardown.js';
import { VM_CACHE_DIR, ensureVmImage, type VmImage } from './vm-image.js';

/**
 * QEMU test clients: a small Linux VM on the device bridge, through a tap
 * device in the bridge's namespace, with a random locally administered MAC.
 * Its /init (test/vm/init.sh) takes a DHCPv6 lease with dhcpcd and then
 * answers commands on its serial console, which is qemu's stdin/stdout here:
 * the host sends `fetch URL`, the VM fetches the page itself over IPv6 and
 * prints it between markers. `poweroff` releases the lease first, so dnsmasq
 * calls its hook with `del`.
 *
 * Software emulation (TCG) by default: a KVM guest hung at boot on the
 * machines this was built on. LAB_QEMU_ACCEL=kvm opts in where KVM works.
 */

export type QemuAccel = 'tcg' | 'kvm';

export interface VmLease {
  /** As the VM's dhcpcd has it and as dnsmasq reports it: DUID-LL, lower-case hex, colon separated. */
  duid: string;
  address: string;
  hostname: string;
  mac: string;
}

export interface VmPage {
  /** busybox wget's exit code: 0 when the page came. */
  rc: number;
  body: string;
}

export interface QemuVmOptions {
  /** The namespace of the bridge (the lab's `<p>-orch`); qemu runs in it too. */
  netns: string;
  bridge: string;
  /** Tap device to create in `netns`, e.g. vmtap1; deleted when the VM is killed. */
  tap: string;
  /** Sent in the DHCPv6 FQDN option; letters, digits and `-`. */
  hostname: string;
  /** Default: random, locally administered. */
  mac?: string;
  /** Default: LAB_QEMU_ACCEL, else tcg. */
  accel?: QemuAccel;
  memoryMb?: number;
  image: VmImage;
  /** The serial console (and qemu's own messages) are appended here. */
  logFile: string;
  log?: LogFn;
  /** Each console line as it arrives (test/vm.sh prints them). */
  onLine?: (line: string) => void;
}

export function accelFromEnv(): QemuAccel {
  const value = process.env.LAB_QEMU_ACCEL ?? 'tcg';
  if (value !== 'tcg' && value !== 'kvm') throw new Error(`LAB_QEMU_ACCEL must be tcg or kvm, got ${JSON.stringify(value)}`);
  return value;
}

/** The DUID-LL (RFC 8415 section 11.4: type 3, hardware type 1) dhcpcd makes from a MAC with `duid ll`. */
export function duidLlOf(mac: string): string {
  return `00:03:00:01:${mac.toLowerCase()}`;
}

/** qemu's command line (without the `ip netns exec` in front). */
export function qemuArgv(options: Pick<QemuVmOptions, 'tap' | 'hostname' | 'image' | 'memoryMb'> & { mac: string; accel: QemuAccel }): string[] {
  if (!/^[a-zA-Z0-9-]{1,63}$/.test(options.hostname)) throw new Error(`VM hostname must be 1..63 letters, digits or '-', got ${JSON.stringify(options.hostname)}`);
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(options.mac)) throw new Error(`VM MAC must look like 02:xx:xx:xx:xx:xx, got ${JSON.stringify(options.mac)}`);
  return [
    'qemu-system-x86_64',
    '-name', options.hostname,
    '-accel', options.accel,
    '-m', String(options.memoryMb ?? 256),
    '-smp', '1',
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    // A panic (panic=-1 reboots at once) or a reboot ends qemu instead of looping.
    '-no-reboot',
    '-serial', 'stdio',
    '-kernel', options.image.kernel,
    '-initrd', options.image.initrd,
    '-append', `console=ttyS0 quiet panic=-1 vm.hostname=${options.hostname}`,
    '-netdev', `tap,id=n0,ifname=${options.tap},script=no,downscript=no`,
    // romfile= skips the PXE option ROM: nothing boots from the network, and ipxe-qemu is not needed.
    '-device', `virtio-net-pci,netdev=n0,mac=${options.mac},romfile=`,
  ];
}

interface LineWaiter {
  from: number;
  match: (line: string) => boolean;
  resolve: (index: number) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class QemuVm {
  readonly lines: string[] = [];
  readonly exited: Promise<ExitInfo>;
  readonly startedAt = Date.now();
  /** Milliseconds from start to the VM's lease and to its first page. */
  readonly timings: Record<string, number> = {};
  private exitInfo: ExitInfo | undefined;
  private partial = '';
  private waiters: LineWaiter[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private leased: VmLease | undefined;
  private killed: Promise<void> | undefined;

  private constructor(
    readonly options: QemuVmOptions & { mac: string; accel: QemuAccel },
    private readonly child: ChildProcessByStdio<Writable, Readable, null>,
  ) {
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        this.flushPartial();
        const why = new Error(`qemu ${this.hostname} exited (${signal ? `signal ${signal}` : `exit ${code}`}); console:\n${this.tail(12)}`);
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(why);
        }
        resolve(this.exitInfo);
      });
      child.on('error', (error) => {
        this.exitInfo ??= { code: 127, signal: null };
        appendFileSync(options.logFile, `qemu: ${error.message}\n`);
        resolve(this.exitInfo);
      });
    });
    child.stdin.on('error', () => {});
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => this.onData(chunk));
  }

  /** Make the tap in the bridge's namespace and start qemu there. */
  static async boot(options: QemuVmOptions): Promise<QemuVm> {
    const mac = options.mac ?? randomMac();
    const accel = options.accel ?? accelFromEnv();
    const argv = qemuArgv({ ...options, mac, accel });
    await mustRun(['ip', '-n', options.netns, 'tuntap', 'add', 'dev', options.tap, 'mode', 'tap']);
    try {
      await mustRun(['ip', '-n', options.netns, 'link', 'set', options.tap, 'master', options.bridge, 'up']);
    } catch (error) {
      await deleteTap(options.netns, options.tap);
      throw error;
    }
    const logFd = openSync(options.logFile, 'a', 0o600);
    let child: ChildProcessByStdio<Writable, Readable, null>;
    try {
      const [file, ...args] = inNs(options.netns, argv);
      // stdin and stdout are the serial console; qemu's own messages go to the log.
      child = spawn(file!, args, { env: labEnv(), stdio: ['pipe', 'pipe', logFd] }) as ChildProcessByStdio<Writable, Readable, null>;
    } finally {
      closeSync(logFd);
    }
    const vm = new QemuVm({ ...options, mac, accel }, child);
    options.log?.(`qemu ${options.hostname}: pid ${vm.pid}, ${accel}, tap ${options.tap} on ${options.bridge} in ${options.netns}, MAC ${mac}`);
    return vm;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get hostname(): string {
    return this.options.hostname;
  }

  get mac(): string {
    return this.options.mac;
  }

  /** The DUID the VM's dhcpcd makes from its MAC (`duid ll`). */
  get expectedDuid(): string {
    return duidLlOf(this.mac);
  }

  get running(): boolean {
    return this.exitInfo === undefined && this.pid > 0;
  }

  private onData(chunk: string): void {
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) this.addLine(raw);
  }

  private flushPartial(): void {
    if (this.partial) this.addLine(this.partial);
    this.partial = '';
  }

  private addLine(raw: string): void {
    const line = raw.replace(/\r/g, '');
    const index = this.lines.push(line) - 1;
    try {
      appendFileSync(this.options.logFile, `${line}\n`);
    } catch {
      /* the lab dir is gone */
    }
    this.options.onLine?.(line);
    for (const w of [...this.waiters]) {
      if (index >= w.from && w.match(line)) {
        this.waiters = this.waiters.filter((x) => x !== w);
        clearTimeout(w.timer);
        w.resolve(index);
      }
    }
  }

  /** The index of the first console line at or after `from` that matches; bounded by `timeoutMs`. */
  waitForLine(what: string, match: (line: string) => boolean, options: { from?: number; timeoutMs?: number } = {}): Promise<number> {
    const from = options.from ?? 0;
    const timeoutMs = options.timeoutMs ?? 60_000;
    for (let i = from; i < this.lines.length; i++) if (match(this.lines[i]!)) return Promise.resolve(i);
    if (!this.running) return Promise.reject(new Error(`qemu ${this.hostname} is not running; console:\n${this.tail(12)}`));
    return new Promise((resolve, reject) => {
      const waiter: LineWaiter = {
        from,
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== waiter);
          reject(new Error(`qemu ${this.hostname}: timed out after ${timeoutMs} ms waiting for ${what}; console:\n${this.tail(12)}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Write one command line to the serial console. */
  send(line: string): void {
    if (/[\r\n]/.test(line)) throw new Error('a console command is one line');
    if (!this.running) throw new Error(`qemu ${this.hostname} is not running`);
    this.child.stdin.write(`${line}\n`);
  }

  /** One command at a time: the VM answers them in order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Wait for the VM's `VM-LEASE` line (or its `VM-FAIL`). */
  async lease(timeoutMs = 60_000): Promise<VmLease> {
    if (this.leased) return this.leased;
    let at: number;
    try {
      at = await this.waitForLine('the VM\'s DHCPv6 lease (VM-LEASE)', (l) => l.startsWith('VM-LEASE ') || l.startsWith('VM-FAIL '), { timeoutMs });
    } catch (error) {
      const booted = this.lines.some((l) => l.startsWith('VM-BOOT '));
      const hint = !booted && this.options.accel === 'kvm' ? ' (the VM never reached its /init: KVM guests hang at boot on some nested hosts; try LAB_QEMU_ACCEL=tcg)' : '';
      throw hint ? new Error(`${(error as Error).message.split('\n')[0]}${hint}`) : error;
    }
    const line = this.lines[at]!;
    if (line.startsWith('VM-FAIL ')) throw new Error(`qemu ${this.hostname}: ${line.slice('VM-FAIL '.length)}; console:\n${this.tail(25)}`);
    const fields = Object.fromEntries(line.slice('VM-LEASE '.length).split(' ').map((kv) => kv.split('=', 2) as [string, string]));
    const { duid, address, hostname, mac } = fields;
    if (!duid || !address || !hostname || !mac) throw new Error(`qemu ${this.hostname}: malformed lease line: ${line}`);
    this.leased = { duid, address, hostname, mac };
    this.timings.lease ??= Date.now() - this.startedAt;
    this.options.log?.(`qemu ${this.hostname}: leased ${address} (DUID ${duid}) ${this.timings.lease} ms after start`);
    return this.leased;
  }

  /** The VM fetches `url` itself (busybox wget) and prints it on the console. */
  fetch(url: string, timeoutMs = 30_000): Promise<VmPage> {
    if (!/^https?:\/\/\S+$/.test(url)) throw new Error(`fetch: not a plain http(s) URL: ${JSON.stringify(url)}`);
    return this.serial(async () => {
      await this.lease(timeoutMs);
      const from = this.lines.length;
      this.send(`fetch ${url}`);
      const begin = await this.waitForLine(`VM-PAGE-BEGIN ${url}`, (l) => l === `VM-PAGE-BEGIN ${url}`, { from, timeoutMs });
      const end = await this.waitForLine('VM-PAGE-END', (l) => l.startsWith('VM-PAGE-END rc='), { from: begin + 1, timeoutMs });
      const rc = Number(this.lines[end]!.slice('VM-PAGE-END rc='.length));
      // init.sh prints each line of the page behind "| "; anything else is console noise.
      const body = this.lines.slice(begin + 1, end).filter((l) => l.startsWith('| ')).map((l) => l.slice(2)).join('\n');
      this.timings.page ??= Date.now() - this.startedAt;
      return { rc: Number.isInteger(rc) ? rc : -1, body };
    });
  }

  /** One ping from inside the VM. */
  ping(address: string, timeoutMs = 15_000): Promise<boolean> {
    if (!/^[0-9a-fA-F:.]+$/.test(address)) throw new Error(`ping: not an address: ${JSON.stringify(address)}`);
    return this.serial(async () => {
      await this.lease(timeoutMs);
      const from = this.lines.length;
      this.send(`ping ${address}`);
      const at = await this.waitForLine('VM-PING', (l) => l.startsWith('VM-PING rc='), { from, timeoutMs });
      return this.lines[at] === 'VM-PING rc=0';
    });
  }

  /**
   * Release the lease (DHCPv6 Release from the VM's dhcpcd) and power off;
   * kills the VM when it does not end within `timeoutMs`. `released` says
   * whether the VM reported its release.
   */
  poweroff(timeoutMs = 30_000): Promise<{ released: boolean }> {
    return this.serial(async () => {
      if (!this.running) return { released: false };
      const from = this.lines.length;
      this.send('poweroff');
      let released = false;
      try {
        const at = await this.waitForLine('VM-RELEASED', (l) => l.startsWith('VM-RELEASED '), { from, timeoutMs });
        released = this.lines[at] === 'VM-RELEASED rc=0';
        const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
        if ((await Promise.race([this.exited, timer])) === 'timeout') this.options.log?.(`qemu ${this.hostname}: no power-off after ${timeoutMs} ms; killing it`);
      } catch (error) {
        if (this.running) this.options.log?.(`qemu ${this.hostname}: ${(error as Error).message.split('\n')[0]}`);
      }
      await this.kill();
      return { released };
    });
  }

  /** Stop qemu (SIGTERM, then SIGKILL; by PID, it is ours) and delete the tap. Idempotent. */
  kill(): Promise<void> {
    this.killed ??= (async () => {
      if (this.running) {
        this.child.kill('SIGTERM');
        const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 3000).unref());
        if ((await Promise.race([this.exited, timer])) === 'timeout') {
          this.child.kill('SIGKILL');
          await this.exited;
        }
      }
      await deleteTap(this.options.netns, this.options.tap);
    })();
    return this.killed;
  }

  tail(lines = 15): string {
    return this.lines.slice(-lines).join('\n');
  }
}

async function deleteTap(netns: string, tap: string): Promise<void> {
  const shown = await run(['ip', '-n', netns, 'link', 'show', tap]);
  if (shown.code === 0) await mustRun(['ip', '-n', netns, 'link', 'del', tap]);
}

/**
 * null when QEMU test clients can run here, else one line saying why not.
 * The lab's own prerequisites are labPrerequisites' job.
 */
export function qemuPrerequisites(): string | null {
  const fix = 'run scripts/install-deps.sh as root';
  if (!findTool('qemu-system-x86_64')) return `QEMU test clients need qemu-system-x86_64 (Debian package qemu-system-x86; ${fix})`;
  if (!existsSync('/dev/net/tun')) return 'QEMU test clients need /dev/net/tun (tap devices)';
  const imageDir = join(VM_CACHE_DIR, 'images');
  const cached = existsSync(imageDir) && readdirSync(imageDir).some((d) => existsSync(join(imageDir, d, 'image.json')));
  for (const [tool, pkg] of [['cpio', 'cpio'], ['dpkg-deb', 'dpkg'], ['apt-get', 'apt']] as const) {
    if (!cached && !findTool(tool)) return `QEMU test clients need ${tool} to build the VM image (Debian package ${pkg}; ${fix})`;
  }
  if (accelFromEnv() === 'kvm' && !existsSync('/dev/kvm')) return 'LAB_QEMU_ACCEL=kvm but there is no /dev/kvm';
  return null;
}

/** For `describe.skipIf(...)`: like labSkipReason (throws under CI=true), with QEMU's needs added. */
export function qemuSkipReason(options: Parameters<typeof labSkipReason>[0] = {}): string | null {
  const reason = labSkipReason(options) ?? qemuPrerequisites();
  if (reason && process.env.CI === 'true') throw new Error(`CI=true and the QEMU test cannot run: ${reason}`);
  return reason;
}

/** What the lab hands to startLabVm. */
export interface LabVmContext {
  netns: string;
  bridge: string;
  /** Where the daemons' logs go (the lab's logDir). */
  logDir: string;
  state: LabState;
  teardown: Teardown;
  log: LogFn;
}

export interface LabVmOptions {
  mac?: string;
  accel?: QemuAccel;
  memoryMb?: number;
  onLine?: (line: string) => void;
}

/** A VM in the lab: tap `vmtap<index>` on the device bridge, hostname `lab-vm-<index>`, console in logs/vm<index>.log. */
export async function startLabVm(ctx: LabVmContext, index: number, options: LabVmOptions = {}): Promise<QemuVm> {
  const image = await ensureVmImage({ log: ctx.log });
  const vm = await QemuVm.boot({
    ...options,
    netns: ctx.netns,
    bridge: ctx.bridge,
    tap: `vmtap${index}`,
    hostname: `lab-vm-${index}`,
    image,
    logFile: join(ctx.logDir, `vm${index}.log`),
    log: ctx.log,
  });
  ctx.state.addProcess(`qemu lab-vm-${index}`, vm.pid);
  ctx.teardown.add(`qemu lab-vm-${index}`, async () => {
    await vm.kill();
    ctx.state.removeProcess(vm.pid);
  });
  return vm;
}
