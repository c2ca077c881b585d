import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, copyFileSync, createWriteStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync,
  renameSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { createGzip } from 'node:zlib';
import { LAB_VAR_DIR } from './dockerd.js';
import { labEnv, mustRun } from './process.js';
import { repoRoot } from './repo.js';
import type { LogFn } from './teardown.js';

/**
 * The QEMU test client's boot image: a kernel from Debian's
 * `linux-image-*-cloud-amd64` and a small initramfs holding test/vm/init.sh,
 * a static busybox, dhcpcd with libc and the loader, and the virtio_net
 * module chain. Everything comes from Debian packages fetched with
 * `apt-get download` and unpacked with `dpkg-deb -x` into a cache
 * (/var/tmp/unionize-lab/vm): nothing is installed on the host.
 *
 * The cache is keyed by the .deb files and init.sh, so a second call returns
 * at once without the network; a changed init.sh rebuilds only the
 * initramfs. Delete the cache directory to follow newer Debian packages.
 */

export const VM_CACHE_DIR = join(LAB_VAR_DIR, 'vm');
/** Bump when the image layout changes, so cached images are rebuilt. */
const BUILDER_VERSION = '2';
const KERNEL_META_PACKAGE = 'linux-image-cloud-amd64';
const USER_PACKAGES = ['busybox-static', 'dhcpcd-base', 'libc6'] as const;
/**
 * The modules the VM needs: the PCI transport (nothing depends on it, so it
 * is named) and the network driver. Their dependencies come from the
 * `depends=` strings, giving virtio_ring virtio virtio_pci_modern_dev
 * virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net.
 */
const ROOT_MODULES = ['virtio_pci', 'virtio_net'];

export interface VmImage {
  kernel: string;
  initrd: string;
  /** e.g. 6.1.0-56-cloud-amd64 */
  kernelRelease: string;
  /** insmod order inside the VM. */
  modules: string[];
  /** The cache key (init.sh, .deb names, builder version). */
  hash: string;
  /** Whether this call built it (false: it came from the cache). */
  built: boolean;
}

interface ImageMeta {
  kernelRelease: string;
  modules: string[];
}

const aptEnv = () => labEnv({ DEBIAN_FRONTEND: 'noninteractive' });

/** The cached .deb of a package (`name_version_arch.deb`), if any. */
function cachedDeb(debDir: string, pkg: string): string | undefined {
  const found = readdirSync(debDir).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb')).sort();
  return found.length > 0 ? join(debDir, found[found.length - 1]!) : undefined;
}

function cachedKernelDeb(debDir: string): string | undefined {
  const found = readdirSync(debDir).filter((f) => /^linux-image-[0-9].*-cloud-amd64_.*\.deb$/.test(f)).sort();
  return found.length > 0 ? join(debDir, found[found.length - 1]!) : undefined;
}

/** The versioned kernel package the meta package points at (`linux-image-6.1.0-56-cloud-amd64`). */
async function resolveKernelPackage(): Promise<string> {
  const fromEnv = process.env.LAB_VM_KERNEL_PACKAGE;
  if (fromEnv) return fromEnv;
  const result = await mustRun(['apt-cache', 'depends', '--important', KERNEL_META_PACKAGE], { env: aptEnv() });
  const match = /Depends:\s*(linux-image-\S+-cloud-amd64)\b/.exec(result.stdout);
  if (!match) throw new Error(`apt-cache depends ${KERNEL_META_PACKAGE}: no linux-image-*-cloud-amd64 dependency in:\n${result.stdout.trim()}`);
  return match[1]!;
}

/**
 * `apt-get download` into a private directory, then move the .debs into the
 * cache (so a concurrent build never sees half a file). apt's index may be
 * stale on a fresh machine (the mirror dropped the version): update once and retry.
 */
async function aptDownload(debDir: string, packages: string[], log: LogFn): Promise<void> {
  const tmp = join(debDir, `.download-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(tmp, { recursive: true });
  try {
    // Running as root, apt would otherwise warn that its sandbox user cannot write here.
    const argv = ['apt-get', '-q', '-o', 'APT::Sandbox::User=root', 'download', ...packages];
    let result = await runIn(tmp, argv, 300_000);
    if (result.code !== 0) {
      log(`vm image: apt-get download failed (${lastLine(result.stderr)}); apt-get update and retry`);
      await mustRun(['apt-get', '-q', 'update'], { env: aptEnv(), timeoutMs: 300_000 });
      result = await runIn(tmp, argv, 300_000);
    }
    if (result.code !== 0) throw new Error(`apt-get download ${packages.join(' ')}: exit ${result.code}: ${lastLine(result.stderr)}`);
    for (const file of readdirSync(tmp)) renameSync(join(tmp, file), join(debDir, file));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

/** Run a command in a directory (process.ts's `run` has no cwd). */
function runIn(cwd: string, argv: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env: aptEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: error.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, stdout, stderr });
    });
  });
}

/** Every file below `dir` (not following symbolic links). */
function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else out.push(path);
  }
  return out;
}

/** A file inside an unpacked package, following symbolic links (absolute ones mean the same path inside it). */
function insideRoot(root: string, path: string): string {
  let rel = path.replace(/^\/+/, '');
  for (let hops = 0; hops < 10; hops++) {
    const full = join(root, rel);
    if (!lstatSync(full).isSymbolicLink()) return full;
    const link = readlinkSync(full);
    rel = link.startsWith('/') ? link.slice(1) : join(dirname(rel), link);
  }
  throw new Error(`too many symbolic links at ${join(root, path)}`);
}

/** A kernel module's `depends=` string from its .modinfo section (modinfo(8) reads the same). */
export function moduleDepends(ko: Buffer): string[] {
  const key = Buffer.from('\0depends=');
  const at = ko.indexOf(key);
  if (at < 0) return [];
  const start = at + key.length;
  const end = ko.indexOf(0, start);
  const value = ko.toString('latin1', start, end < 0 ? undefined : end);
  return value.split(',').map((m) => m.trim().replace(/-/g, '_')).filter(Boolean);
}

/** Dependencies first: the order to insmod them in. */
export function moduleLoadOrder(roots: readonly string[], dependsOf: (name: string) => string[]): string[] {
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (order.includes(name)) return;
    if (visiting.has(name)) throw new Error(`module dependency cycle at ${name}`);
    visiting.add(name);
    for (const dep of dependsOf(name)) visit(dep);
    visiting.delete(name);
    order.push(name);
  };
  for (const root of roots) visit(root);
  return order;
}

/** A module's bytes, decompressed when the package ships .ko.xz or .ko.zst. */
async function readModule(path: string): Promise<Buffer> {
  if (path.endsWith('.ko')) return readFileSync(path);
  const tool = path.endsWith('.xz') ? ['xz', '-dc', path] : path.endsWith('.zst') ? ['zstd', '-dcq', path] : undefined;
  if (!tool) throw new Error(`unknown module compression: ${path}`);
  return new Promise((resolve, reject) => {
    const child = spawn(tool[0]!, tool.slice(1), { env: labEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${tool.join(' ')}: exit ${code}: ${stderr.trim()}`))));
  });
}

/** Shared libraries a dynamic executable names (`libc.so.6`), from its string table. */
function neededLibraries(binary: Buffer): string[] {
  const names = new Set<string>();
  for (const match of binary.toString('latin1').matchAll(/\0(lib[a-z0-9_+-]+\.so\.[0-9]+)\0/g)) names.add(match[1]!);
  return [...names];
}

/** Pack a directory as a gzip'd newc cpio archive (what the kernel unpacks into its rootfs). */
async function packInitramfs(stage: string, output: string): Promise<void> {
  const files = ['.', ...walkAll(stage).map((p) => `./${relative(stage, p)}`)].sort();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('cpio', ['-o', '-H', 'newc', '-R', '0:0', '--quiet'], { cwd: stage, env: labEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const out = createWriteStream(output, { mode: 0o644 });
    child.stdout.pipe(createGzip({ level: 6 })).pipe(out);
    let exitCode: number | null = null;
    let written = false;
    const done = () => {
      if (exitCode === null || !written) return;
      if (exitCode === 0) resolve();
      else reject(new Error(`cpio: exit ${exitCode}: ${stderr.trim()}`));
    };
    out.on('finish', () => {
      written = true;
      done();
    });
    out.on('error', reject);
    child.on('error', (error) => reject(new Error(`cpio: ${error.message} (Debian package cpio)`)));
    child.on('close', (code) => {
      exitCode = code ?? 128;
      done();
    });
    child.stdin.end(`${files.join('\n')}\n`);
  });
}

/** Every path below `dir`, directories included. */
function walkAll(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    out.push(path);
    if (entry.isDirectory()) walkAll(path, out);
  }
  return out;
}

async function buildImage(debs: Record<string, string>, initScript: string, outDir: string, log: LogFn): Promise<ImageMeta> {
  const work = join(dirname(outDir), `.build-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(work, { recursive: true });
  try {
    const roots: Record<string, string> = {};
    for (const [pkg, deb] of Object.entries(debs)) {
      roots[pkg] = join(work, 'pkg', pkg);
      mkdirSync(roots[pkg]!, { recursive: true });
      await mustRun(['dpkg-deb', '-x', deb, roots[pkg]!]);
    }
    const stage = join(work, 'stage');
    for (const sub of ['bin', 'sbin', 'etc', 'lib/modules', 'lib/x86_64-linux-gnu', 'lib64', 'proc', 'sys', 'dev', 'run', 'tmp', 'var/lib/dhcpcd']) {
      mkdirSync(join(stage, sub), { recursive: true });
    }

    // The kernel and the virtio_net module chain.
    const kernelRoot = roots.kernel!;
    const vmlinuz = readdirSync(join(kernelRoot, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new Error(`${basename(debs.kernel!)}: no boot/vmlinuz-*`);
    const kernelRelease = vmlinuz.slice('vmlinuz-'.length);
    copyFileSync(join(kernelRoot, 'boot', vmlinuz), join(outDir, 'vmlinuz'));
    const moduleFiles = new Map<string, string>();
    for (const base of ['lib/modules', 'usr/lib/modules']) {
      const dir = join(kernelRoot, base, kernelRelease);
      if (!existsSync(dir)) continue;
      for (const file of walk(dir)) {
        const m = /^(.+)\.ko(?:\.xz|\.zst)?$/.exec(basename(file));
        if (m) moduleFiles.set(m[1]!.replace(/-/g, '_'), file);
      }
    }
    const moduleBytes = new Map<string, Buffer>();
    const loadModule = async (name: string): Promise<void> => {
      if (moduleBytes.has(name)) return;
      const file = moduleFiles.get(name);
      if (!file) throw new Error(`${basename(debs.kernel!)}: no module ${name}.ko`);
      const bytes = await readModule(file);
      moduleBytes.set(name, bytes);
      for (const dep of moduleDepends(bytes)) await loadModule(dep);
    };
    for (const name of ROOT_MODULES) await loadModule(name);
    const modules = moduleLoadOrder(ROOT_MODULES, (name) => moduleDepends(moduleBytes.get(name)!));
    for (const name of modules) writeFileSync(join(stage, 'lib', 'modules', `${name}.ko`), moduleBytes.get(name)!);
    writeFileSync(join(stage, 'lib', 'modules', 'order'), `${modules.join('\n')}\n`);

    // busybox (static: its applets are made by /init with --install -s).
    const busyboxPath = ['bin/busybox', 'usr/bin/busybox'].find((p) => existsSync(join(roots['busybox-static']!, p)));
    if (!busyboxPath) throw new Error(`${basename(debs['busybox-static']!)}: no bin/busybox`);
    const busybox = insideRoot(roots['busybox-static']!, busyboxPath);
    copyFileSync(busybox, join(stage, 'bin', 'busybox'));
    chmodSync(join(stage, 'bin', 'busybox'), 0o755);

    // dhcpcd, the libraries it names, and the loader, from the libc6 package.
    const dhcpcdPath = ['usr/sbin/dhcpcd', 'sbin/dhcpcd'].find((p) => existsSync(join(roots['dhcpcd-base']!, p)));
    if (!dhcpcdPath) throw new Error(`${basename(debs['dhcpcd-base']!)}: no usr/sbin/dhcpcd`);
    const dhcpcd = insideRoot(roots['dhcpcd-base']!, dhcpcdPath);
    copyFileSync(dhcpcd, join(stage, 'sbin', 'dhcpcd'));
    chmodSync(join(stage, 'sbin', 'dhcpcd'), 0o755);
    const libcRoot = roots.libc6!;
    const libcFiles = walk(libcRoot);
    const findLib = (name: string) =>
      libcFiles.find((f) => basename(f) === name && /\/(usr\/)?lib\/x86_64-linux-gnu\//.test(f));
    for (const lib of neededLibraries(readFileSync(dhcpcd))) {
      const file = findLib(lib);
      if (!file) throw new Error(`dhcpcd needs ${lib}, which the libc6 package does not ship`);
      copyFileSync(insideRoot(libcRoot, relative(libcRoot, file)), join(stage, 'lib', 'x86_64-linux-gnu', lib));
    }
    const loader = findLib('ld-linux-x86-64.so.2');
    if (!loader) throw new Error('the libc6 package ships no ld-linux-x86-64.so.2');
    copyFileSync(insideRoot(libcRoot, relative(libcRoot, loader)), join(stage, 'lib', 'x86_64-linux-gnu', 'ld-linux-x86-64.so.2'));
    // The interpreter path compiled into every amd64 executable.
    symlinkSync('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(stage, 'lib64', 'ld-linux-x86-64.so.2'));
    // dhcpcd looks up its privilege-separation user and runs without it when missing.
    writeFileSync(join(stage, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    writeFileSync(join(stage, 'etc', 'group'), 'root:x:0:\n');

    writeFileSync(join(stage, 'init'), initScript, { mode: 0o755 });
    chmodSync(join(stage, 'init'), 0o755);
    await packInitramfs(stage, join(outDir, 'initrd.gz'));
    log(`vm image: kernel ${kernelRelease}, modules ${modules.join(' ')}`);
    return { kernelRelease, modules };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The kernel and initramfs for a test VM, built on first use and cached.
 * Needs root only for the cache directory; `apt-get download` needs the
 * Debian mirror the first time.
 */
export function ensureVmImage(options: { log?: LogFn; cacheDir?: string } = {}): Promise<VmImage> {
  const cacheDir = options.cacheDir ?? VM_CACHE_DIR;
  // One build per process, however many VMs start at once.
  let pending = inProcess.get(cacheDir);
  if (!pending) {
    pending = buildOrReuse(cacheDir, options.log ?? (() => {}));
    inProcess.set(cacheDir, pending);
    pending.catch(() => inProcess.delete(cacheDir));
  }
  return pending;
}

const inProcess = new Map<string, Promise<VmImage>>();

/** Work directories (`.download-*`, `.build-*`, `.tmp-*`) of builds killed half way. */
function sweepLeftovers(dirs: string[]): void {
  const before = Date.now() - 30 * 60_000;
  for (const dir of dirs) {
    for (const entry of readdirSync(dir)) {
      if (!/^\.(download|build|tmp)-/.test(entry)) continue;
      const path = join(dir, entry);
      if (statSync(path).mtimeMs < before) rmSync(path, { recursive: true, force: true });
    }
  }
}

async function buildOrReuse(cacheDir: string, log: LogFn): Promise<VmImage> {
  const debDir = join(cacheDir, 'debs');
  mkdirSync(join(cacheDir, 'images'), { recursive: true });
  mkdirSync(debDir, { recursive: true });
  sweepLeftovers([debDir, join(cacheDir, 'images')]);

  const started = Date.now();
  const missing: string[] = USER_PACKAGES.filter((p) => !cachedDeb(debDir, p));
  if (!cachedKernelDeb(debDir)) missing.push(await resolveKernelPackage());
  if (missing.length > 0) {
    log(`vm image: apt-get download ${missing.join(' ')}`);
    await aptDownload(debDir, missing, log);
  }
  const debs: Record<string, string> = { kernel: cachedKernelDeb(debDir)! };
  for (const pkg of USER_PACKAGES) {
    const deb = cachedDeb(debDir, pkg);
    if (!deb) throw new Error(`apt-get download ${pkg} left no ${pkg}_*.deb in ${debDir}`);
    debs[pkg] = deb;
  }
  if (!debs.kernel) throw new Error(`apt-get download left no linux-image-*-cloud-amd64 .deb in ${debDir}`);

  const initScript = readFileSync(join(repoRoot(), 'test', 'vm', 'init.sh'), 'utf8');
  const hash = createHash('sha256')
    .update(`${BUILDER_VERSION}\n${Object.values(debs).map((d) => basename(d)).sort().join('\n')}\n`)
    .update(initScript)
    .digest('hex')
    .slice(0, 16);
  const imageDir = join(cacheDir, 'images', hash);
  const metaFile = join(imageDir, 'image.json');
  if (existsSync(metaFile)) {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as ImageMeta;
    return { kernel: join(imageDir, 'vmlinuz'), initrd: join(imageDir, 'initrd.gz'), ...meta, hash, built: false };
  }

  // Build beside the final place, then rename: a concurrent build loses the race harmlessly.
  const tmpDir = join(cacheDir, 'images', `.tmp-${hash}-${process.pid}-${randomBytes(3).toString('hex')}`);
  mkdirSync(tmpDir);
  try {
    const meta = await buildImage(debs, initScript, tmpDir, log);
    writeFileSync(join(tmpDir, 'image.json'), `${JSON.stringify(meta)}\n`);
    try {
      renameSync(tmpDir, imageDir);
    } catch (error) {
      if (!existsSync(metaFile)) throw error;
    }
    log(`vm image: built ${imageDir} in ${Date.now() - started} ms (initramfs ${Math.round(statSync(join(imageDir, 'initrd.gz')).size / 1024)} KiB)`);
    // Images of an older init.sh or older packages are not used again (a VM that runs has read its files).
    for (const old of readdirSync(join(cacheDir, 'images'))) {
      if (old !== hash && !old.startsWith('.')) rmSync(join(cacheDir, 'images', old), { recursive: true, force: true });
    }
    return { kernel: join(imageDir, 'vmlinuz'), initrd: join(imageDir, 'initrd.gz'), ...meta, hash, built: true };
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}
