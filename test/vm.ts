import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { QemuVm, accelFromEnv, qemuPrerequisites, type QemuAccel } from './lab/qemu.js';
import { ensureVmImage } from './lab/vm-image.js';

/**
 * test/vm.sh: boot one QEMU test client on a bridge in a network namespace,
 * outside the lab (the lab uses the same pieces: test/lab/qemu.ts and
 * test/lab/vm-image.ts). See usage below.
 */

const USAGE = `usage: test/vm.sh --netns NS --bridge BRIDGE [--tap NAME] [--mac MAC] [--hostname NAME]
                  [--accel tcg|kvm] [--fetch URL | --once]
       test/vm.sh --build
  Boots a VM whose /init (test/vm/init.sh) takes a DHCPv6 lease on BRIDGE
  through a new tap device in NS. Its serial console is this terminal: type
  'fetch URL', 'ping ADDRESS', 'log' or 'poweroff' (releases the lease, then
  stops). End of input also powers off; Ctrl-C kills it without a release.
  --fetch URL: after the lease, the VM fetches URL, prints it and powers off
  (exit 1 when the fetch failed). --once: lease, then power off.
  --build: build (or find) the cached kernel and initramfs and print them.`;

function usage(message: string): never {
  process.stderr.write(`vm.sh: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    netns: { type: 'string' },
    bridge: { type: 'string' },
    tap: { type: 'string' },
    mac: { type: 'string' },
    hostname: { type: 'string', default: 'lab-vm' },
    accel: { type: 'string' },
    fetch: { type: 'string' },
    once: { type: 'boolean', default: false },
    build: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const say = (line: string) => process.stderr.write(`vm.sh: ${line}\n`);

async function main(): Promise<number> {
  if (values.build) {
    const started = Date.now();
    const image = await ensureVmImage({ log: say });
    say(`${image.built ? 'built' : 'cached'} in ${Date.now() - started} ms`);
    process.stdout.write(`${JSON.stringify(image)}\n`);
    return 0;
  }
  if (!values.netns || !values.bridge) usage('--netns and --bridge are required');
  if (values.accel !== undefined && values.accel !== 'tcg' && values.accel !== 'kvm') usage('--accel must be tcg or kvm');
  const missing = qemuPrerequisites();
  if (missing) {
    say(missing);
    return 1;
  }
  const image = await ensureVmImage({ log: say });
  const logDir = mkdtempSync(join(tmpdir(), 'unionize-vm-'));
  const vm = await QemuVm.boot({
    netns: values.netns,
    bridge: values.bridge,
    tap: values.tap ?? `vmtap${randomBytes(2).toString('hex')}`,
    hostname: values.hostname,
    ...(values.mac ? { mac: values.mac.toLowerCase() } : {}),
    accel: (values.accel as QemuAccel | undefined) ?? accelFromEnv(),
    image,
    logFile: join(logDir, 'console.log'),
    log: say,
    onLine: (line) => process.stdout.write(`${line}\n`),
  });
  // Ctrl-C (qemu gets it too) or SIGTERM: no release, but no qemu or tap left behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void vm.kill().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143)));
  }
  try {
    if (values.fetch || values.once) {
      await vm.lease(60_000);
      let ok = true;
      if (values.fetch) {
        const page = await vm.fetch(values.fetch, 30_000);
        ok = page.rc === 0;
      }
      const { released } = await vm.poweroff();
      say(`lease ${vm.timings.lease} ms${vm.timings.page ? `, page ${vm.timings.page} ms` : ''} after start; released: ${released}`);
      return ok && released ? 0 : 1;
    }
    // Interactive: forward typed lines to the console; end of input powers off.
    const input = createInterface({ input: process.stdin, terminal: false });
    input.on('line', (line) => {
      if (vm.running && line.trim()) vm.send(line.trim());
    });
    input.on('close', () => void vm.poweroff());
    const exit = await vm.exited;
    input.close();
    await vm.kill();
    return exit.code ?? 1;
  } catch (error) {
    await vm.kill();
    throw error;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    say(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
