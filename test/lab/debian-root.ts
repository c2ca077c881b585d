import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_VAR_DIR } from './dockerd.js';
import { removeTree } from './mounts.js';
import { labEnv, mustRun, run, type CommandResult } from './process.js';
import type { LogFn } from './teardown.js';

/**
 * Fresh Debian 12 root filesystems for tests that need a machine of their own:
 * one made by `debootstrap --variant=minbase` (with git, as a newcomer's
 * machine has) is kept under /var/tmp/unionize-lab/roots/ and copied for each
 * use, so a test starts from a root nothing has touched. Delete the folder to
 * follow newer Debian packages.
 */

export const ROOTS_DIR = join(LAB_VAR_DIR, 'roots');
const SUITE = 'bookworm';
const MIRROR = process.env.LAB_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

/** What debootstrap puts beyond minbase; the name is the cache folder's (bump it when the list changes). */
export interface RootRecipe {
  name: string;
  include: readonly string[];
}

/** A newcomer's fresh machine: git, to clone, and what apt needs for https. */
export const NEWCOMER_ROOT: RootRecipe = { name: 'bookworm-minbase-git-1', include: ['git', 'ca-certificates'] };

/**
 * A machine to boot (systemd-nspawn -b) and install the packages on offline:
 * systemd and dbus, and every package packaging/*\/control Depends on, so
 * `apt-get install ./x.deb` finds them all installed (and what they Recommend:
 * isc-dhcp-client).
 */
export const MACHINE_ROOT: RootRecipe = {
  name: 'bookworm-machine-3',
  include: [
    'systemd', 'systemd-sysv', 'dbus', 'iproute2', 'docker.io', 'dnsmasq-base', 'nftables', 'busybox-static',
    'openssl', 'adduser', 'ca-certificates', 'libstdc++6', 'libgcc-s1', 'isc-dhcp-client', 'iputils-ping', 'procps',
  ],
};

/** The cached root of `recipe`, made by debootstrap when missing (a few minutes, once). */
export async function ensureBaseRoot(log: LogFn, recipe: RootRecipe = NEWCOMER_ROOT): Promise<string> {
  const RECIPE = recipe.name;
  const INCLUDE = recipe.include;
  const base = join(ROOTS_DIR, RECIPE);
  if (existsSync(join(base, '.complete'))) return base;
  mkdirSync(ROOTS_DIR, { recursive: true, mode: 0o700 });
  const building = `${base}.building-${randomBytes(3).toString('hex')}`;
  log(`debootstrap ${SUITE} (minbase + ${INCLUDE.join(', ')}) into ${building}`);
  const started = Date.now();
  try {
    await mustRun(['debootstrap', '--variant=minbase', `--include=${INCLUDE.join(',')}`, SUITE, building, MIRROR], {
      env: labEnv({ DEBIAN_FRONTEND: 'noninteractive' }),
      timeoutMs: 900_000,
    });
    writeFileSync(join(building, '.complete'), `${RECIPE} ${new Date().toISOString()}\n`);
    await removeTree(base);
    renameSync(building, base);
  } catch (error) {
    // debootstrap mounts /proc and /sys in the root while it works: removeTree detaches them first.
    await removeTree(building);
    throw error;
  }
  log(`debootstrap: ${base} in ${Math.round((Date.now() - started) / 1000)} s`);
  return base;
}

/** A copy of the base root for one test, removed by the returned function. */
export async function freshRoot(log: LogFn, recipe: RootRecipe = NEWCOMER_ROOT): Promise<{ root: string; remove: () => Promise<void> }> {
  const base = await ensureBaseRoot(log, recipe);
  const root = join(ROOTS_DIR, `run-${randomBytes(4).toString('hex')}`);
  try {
    await mustRun(['cp', '-a', '--one-file-system', base, root], { timeoutMs: 300_000 });
  } catch (error) {
    await removeTree(root);
    throw error;
  }
  return { root, remove: () => removeTree(root) };
}

/**
 * Run a command inside `root` with systemd-nspawn (not booted: the command is
 * the container's only process), sharing the host's network so that apt and
 * the npm registry are reachable, with the host's resolv.conf.
 */
export function runInRoot(
  root: string,
  argv: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const env = Object.entries(options.env ?? {}).map(([key, value]) => `--setenv=${key}=${value}`);
  return run(
    [
      'systemd-nspawn', '--quiet', '--register=no', '--keep-unit', '--as-pid2', '--resolv-conf=copy-host',
      `--directory=${root}`, ...(options.cwd ? [`--chdir=${options.cwd}`] : []), ...env, '--', ...argv,
    ],
    { timeoutMs: options.timeoutMs ?? 600_000 },
  );
}
