import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { duidLlOf, qemuArgv } from './qemu.js';
import { repoRoot } from './repo.js';
import { moduleDepends, moduleLoadOrder, type VmImage } from './vm-image.js';

/** The QEMU test client's pure parts; the VM itself is test/qemu.test.ts. */

const image: VmImage = { kernel: '/k/vmlinuz', initrd: '/k/initrd.gz', kernelRelease: 'x', modules: [], hash: 'h', built: false };

describe('kernel module dependencies', () => {
  const modinfo = (fields: string[]) => Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0]), Buffer.from(`${fields.join('\0')}\0`), Buffer.from([0, 1, 2])]);

  it('reads the depends= string of a module, with - as _', () => {
    expect(moduleDepends(modinfo(['license=GPL', 'depends=net_failover,virtio,virtio-ring', 'intree=Y']))).toEqual(['net_failover', 'virtio', 'virtio_ring']);
    expect(moduleDepends(modinfo(['license=GPL', 'depends=', 'intree=Y']))).toEqual([]);
    expect(moduleDepends(modinfo(['license=GPL']))).toEqual([]);
  });

  it('orders dependencies first, each module once, roots in the given order', () => {
    const deps: Record<string, string[]> = {
      virtio_net: ['net_failover', 'virtio', 'virtio_ring'],
      net_failover: ['failover'],
      failover: [],
      virtio_pci: ['virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio', 'virtio_ring'],
      virtio: [],
      virtio_ring: [],
      virtio_pci_modern_dev: [],
      virtio_pci_legacy_dev: [],
    };
    const ordered = moduleLoadOrder(['virtio_pci', 'virtio_net'], (m) => deps[m]!);
    expect([...ordered].sort()).toEqual(Object.keys(deps).sort());
    for (const [module, needs] of Object.entries(deps)) {
      for (const dep of needs) expect(ordered.indexOf(dep)).toBeLessThan(ordered.indexOf(module));
    }
    expect(ordered.at(-1)).toBe('virtio_net');
  });

  it('refuses a dependency cycle', () => {
    expect(() => moduleLoadOrder(['a'], (m) => (m === 'a' ? ['b'] : ['a']))).toThrow(/cycle/);
  });
});

describe('qemu command line', () => {
  const base = { tap: 'vmtap1', hostname: 'lab-vm-1', image, mac: '02:00:00:00:00:01', accel: 'tcg' as const };

  it('boots the image on the tap with the MAC, TCG by default, serial on stdio, no reboot', () => {
    const argv = qemuArgv(base);
    const after = (flag: string) => argv[argv.indexOf(flag) + 1];
    expect(argv[0]).toBe('qemu-system-x86_64');
    expect(after('-accel')).toBe('tcg');
    expect(after('-kernel')).toBe('/k/vmlinuz');
    expect(after('-initrd')).toBe('/k/initrd.gz');
    expect(after('-serial')).toBe('stdio');
    expect(after('-append')).toContain('vm.hostname=lab-vm-1');
    expect(after('-append')).toContain('panic=-1');
    expect(argv).toContain('-no-reboot');
    expect(after('-netdev')).toBe('tap,id=n0,ifname=vmtap1,script=no,downscript=no');
    expect(after('-device')).toBe('virtio-net-pci,netdev=n0,mac=02:00:00:00:00:01,romfile=');
    expect(qemuArgv({ ...base, accel: 'kvm' })[qemuArgv(base).indexOf('-accel') + 1]).toBe('kvm');
  });

  it('refuses a hostname or MAC that would break the command line', () => {
    expect(() => qemuArgv({ ...base, hostname: 'a b' })).toThrow(/hostname/);
    expect(() => qemuArgv({ ...base, hostname: 'x,id=evil' })).toThrow(/hostname/);
    expect(() => qemuArgv({ ...base, mac: '02:00:00:00:00:01,romfile=/x' })).toThrow(/MAC/);
  });

  it('predicts the DUID-LL dhcpcd makes from the MAC', () => {
    expect(duidLlOf('02:AB:00:00:00:01')).toBe('00:03:00:01:02:ab:00:00:00:01');
  });
});

describe('the VM /init', () => {
  const init = join(repoRoot(), 'test', 'vm', 'init.sh');
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((b) => existsSync(b));

  it.skipIf(!busybox)('parses as busybox sh', () => {
    const result = spawnSync(busybox!, ['sh', '-n', init], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
