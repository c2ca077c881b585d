import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshRoot, runInRoot } from './lab/debian-root.js';
import { findTool } from './lab/prereqs.js';
import { repoRoot } from './lab/repo.js';

/**
 * The README's set-up on a newcomer's machine: a fresh Debian 12 root made by
 * debootstrap (minbase and git; no Node, no npm, no compiler), the repository
 * copied in, another apt holding the locks at first. scripts/setup.sh (what
 * ./demo and ./run-tests run first) must wait for the lock and say so, bring
 * the Debian packages, the project's Node 24 from the npm registry, npm ci
 * (better-sqlite3 built from source against that Node's headers) and the
 * build, one line per step and no wall of npm warnings; run again, it finds
 * everything there.
 */

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (debootstrap, systemd-nspawn)';
  for (const [tool, pkg] of [['debootstrap', 'debootstrap'], ['systemd-nspawn', 'systemd-container']] as const) {
    if (!findTool(tool)) return `needs ${tool} (Debian package ${pkg})`;
  }
  return null;
}

const reason = skipReason();
if (reason && process.env.CI === 'true') throw new Error(`CI=true and the fresh-Debian set-up test cannot run: ${reason}`);
if (reason) console.warn(`e2e skipped: ${reason}`);

/** The working tree's files (tracked and new, not ignored), as a newcomer's clone would hold them. */
function copyRepository(into: string): void {
  const repo = repoRoot();
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repo, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files: ${listed.stderr}`);
  const files = listed.stdout.split('\0').filter((f) => f && existsSync(join(repo, f)));
  mkdirSync(into, { recursive: true });
  const list = join(tmpdir(), `fresh-debian-files-${process.pid}`);
  writeFileSync(list, `${files.join('\0')}\0`);
  try {
    const archive = spawnSync('tar', ['-C', repo, '--null', '-T', list, '-cf', '-'], { maxBuffer: 1 << 30 });
    if (archive.status !== 0) throw new Error(`tar: ${archive.stderr.toString()}`);
    const unpack = spawnSync('tar', ['-C', into, '-xf', '-'], { input: archive.stdout });
    if (unpack.status !== 0) throw new Error(`tar -x: ${unpack.stderr.toString()}`);
  } finally {
    rmSync(list, { force: true });
  }
}

describe.skipIf(reason)(`set-up on a fresh Debian 12 with no Node${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let remove: (() => Promise<void>) | undefined;

  afterAll(async () => {
    await remove?.();
  });

  it('waits for the apt lock, brings Node 24 from the registry, installs, builds; a second run finds it all there', { timeout: 3_000_000 }, async () => {
    const made = await freshRoot((line) => console.log(`fresh-debian: ${line}`));
    remove = made.remove;
    const { root } = made;
    expect(existsSync(join(root, 'usr/bin/node'))).toBe(false);
    expect(existsSync(join(root, 'usr/bin/git'))).toBe(true);
    const repo = join(root, 'opt/unionize');
    copyRepository(repo);
    copyFileSync(join(repoRoot(), 'test/fresh-debian/setup-in-root.sh'), join(root, 'setup-in-root.sh'));
    // The site's trust, as every machine on this network has it: its local CAs (a TLS-intercepting
    // proxy's, here) and Node told to use them (NODE_EXTRA_CA_CERTS), as on this machine.
    const localCas = '/usr/local/share/ca-certificates';
    if (existsSync(localCas)) cpSync(localCas, join(root, localCas), { recursive: true });
    const siteEnv: Record<string, string> = process.env.NODE_EXTRA_CA_CERTS ? { NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' } : {};
    chmodSync(join(root, 'setup-in-root.sh'), 0o755);

    const started = Date.now();
    const result = await runInRoot(root, ['/setup-in-root.sh'], { timeoutMs: 2_700_000, env: { CI: process.env.CI ?? '', ...siteEnv } });
    const output = `${result.stdout}\n${result.stderr}`;
    console.log(`fresh-debian: set-up ran ${Math.round((Date.now() - started) / 1000)} s:\n${output}`);
    expect(result.code, output).toBe(0);

    const [first = '', second = ''] = output.split('== second set-up');
    // The first run: waited for the lock (and said who held it), then one line per step.
    expect(first).toMatch(/waiting for the apt lock \(held by process \d+ \(perl\)\)/);
    expect(first).toMatch(/^setup: debian +installing \d+ package\(s\): .* ok \(\d+\.\d s\)$/m);
    expect(first).toMatch(/^setup: node +fetching node 24\.\d+\.\d+ and npm \S+ from the npm registry … ok/m);
    expect(first).toMatch(/^setup: node +v24\.\d+\.\d+ at \.node\/bin\/node: the official build from the npm registry/m);
    expect(first).toMatch(/^setup: npm +npm ci .* ok \(\d+\.\d s\)$/m);
    expect(first).toMatch(/^setup: build +tsc -b and the bundles \(hook, daemons\) … ok/m);
    expect(first).toMatch(/^setup: ready in \d+\.\d s$/m);
    // No wall of npm's warnings: they are in .lab/setup/npm.log, not on the screen.
    expect(output).not.toMatch(/npm (warn|WARN)/);
    // The second run: nothing to do.
    expect(second).toMatch(/^setup: debian all \d+ packages present$/m);
    expect(second).toMatch(/^setup: npm +node_modules up to date$/m);
    expect(second).not.toMatch(/fetching node/);
    // What it made runs, on the project's Node, with no Debian nodejs anywhere.
    expect(output).toMatch(/^node: \/opt\/unionize\/\.node\/bin\/node v24\.\d+\.\d+$/m);
    expect(output).toMatch(/^better-sqlite3: sqlite 3\.\d+/m);
    expect(output).toMatch(/^Usage: orchestratorctl/m);
    expect(output).toMatch(/^Debian's nodejs: not installed$/m);
    for (const pkg of ['orchestrator', 'unionize', 'ctl']) expect(existsSync(join(repo, 'packages', pkg, 'dist', 'main.js'))).toBe(true);
    expect(existsSync(join(repo, 'packages/hook/dist/orchestrator-hook.mjs'))).toBe(true);
  });
});
